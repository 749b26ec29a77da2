// Instructors' live pages (a cohort's progress matrix, a drill's results): the
// organisation's progress feed (ws/progress/) says when something changed; the page's
// live part is fetched again (htmx), so it is never out of date and never reloaded by hand.
(() => {
  "use strict";
  const config = JSON.parse(document.getElementById("teach-config").textContent);
  let pending = null;
  let retry = 0;

  function relevant(data) {
    if (config.kinds && !config.kinds.includes(data.kind)) return false;
    return !config.tutorial || data.tutorial === config.tutorial;
  }

  function refresh() {
    clearTimeout(pending);
    pending = setTimeout(() => {
      if (window.htmx) window.htmx.ajax("GET", config.refresh, { target: config.target, swap: "outerHTML" });
    }, 250);
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/ws/progress/`);
    // Once connected (and after every reconnect), catch up on what happened meanwhile.
    socket.onopen = () => { retry = 0; refresh(); };
    socket.onmessage = (message) => {
      const data = JSON.parse(message.data);
      if (data.type === "progress" && relevant(data)) refresh();
    };
    socket.onclose = (event) => {
      if (event.code >= 4400 && event.code < 4500) return;
      retry = Math.min(retry + 1, 6);
      setTimeout(connect, 500 * 2 ** retry);
    };
  }
  connect();
})();
