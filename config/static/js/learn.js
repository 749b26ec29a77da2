// A tutorial run: when the lab socket reports progress (a check passed, a step done), the
// guide beside the lab is fetched again (htmx) and the learner is told what passed.
(() => {
  "use strict";
  let toastTimer = null;

  function toast(text) {
    let box = document.querySelector(".toast");
    if (!box) {
      box = document.createElement("div");
      box.className = "toast";
      box.setAttribute("role", "status");
      box.dataset.testid = "toast";
      document.body.appendChild(box);
    }
    box.textContent = text;
    box.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { box.hidden = true; }, 6000);
  }

  document.addEventListener("lab:connected", () => {
    if (window.htmx) window.htmx.trigger(document.body, "refresh");
  });

  document.addEventListener("lab:progress", (event) => {
    const data = event.detail;
    if (data.kind === "check") {
      if (data.completed) toast("Tutorial completed. Well done!");
      else if (data.step_passed) toast(`Step “${data.step}” passed.`);
      else toast(data.message || `Check passed: ${data.check}.`);
    }
    // A wrong answer's own event: its answer already brought the guide back.
    if (data.kind !== "attempt" && window.htmx) window.htmx.trigger(document.body, "refresh");
  });
})();
