// The lab page: frames from the relay over the WebSocket drive the charts, the scenario
// and mitigation state, the timeline and the log tail; the learner's switches go back
// over the same socket. Charts are uPlot (installed from the npm registry by the build).
(() => {
  "use strict";
  const config = JSON.parse(document.getElementById("lab-config").textContent);
  const $ = (selector) => document.querySelector(selector);
  const POINTS = 120;
  const series = { t: [], rps: [], errors: [], p50: [], p95: [], p99: [] };
  const seenEvents = new Set();
  let charts = null;
  let frames = [];
  let expiresAt = config.expires_at ? Date.parse(config.expires_at) : null;
  let state = config.state;
  let socket = null;
  let retry = 0;

  const number = (v) => (typeof v === "number" && isFinite(v) ? v : null);
  const service = () => $("#service").value;

  function figure(frame, name) {
    return number(frame.figures[`${service()}.${name}`]);
  }

  function rebuild() {
    for (const key of Object.keys(series)) series[key].length = 0;
    for (const frame of frames) push(frame);
    draw();
  }

  function push(frame) {
    const rps = figure(frame, "rps");
    let errors = figure(frame, "errors_rps");
    if (errors === null && rps !== null && figure(frame, "error_ratio") !== null) {
      errors = rps * figure(frame, "error_ratio");
    }
    series.t.push(frame.at);
    series.rps.push(rps);
    series.errors.push(errors);
    series.p50.push(figure(frame, "p50_ms"));
    series.p95.push(figure(frame, "p95_ms"));
    series.p99.push(figure(frame, "p99_ms"));
    for (const key of Object.keys(series)) if (series[key].length > POINTS) series[key].shift();
  }

  function makeCharts() {
    if (charts || typeof uPlot === "undefined") return;
    const width = Math.max(280, $("#chart-rate").clientWidth || 420);
    const base = { width, height: 200, scales: { x: { time: true } }, legend: { live: false } };
    charts = {
      rate: new uPlot(
        { ...base, series: [{}, { label: "req/s", stroke: "#0b61d6" }, { label: "errors/s", stroke: "#b42318" }] },
        [[], [], []],
        $("#chart-rate"),
      ),
      latency: new uPlot(
        {
          ...base,
          series: [{}, { label: "p50", stroke: "#027a48" }, { label: "p95", stroke: "#b54708" }, { label: "p99", stroke: "#b42318" }],
        },
        [[], [], [], []],
        $("#chart-latency"),
      ),
    };
  }

  function draw() {
    makeCharts();
    if (!charts) return;
    charts.rate.setData([series.t, series.rps, series.errors]);
    charts.latency.setData([series.t, series.p50, series.p95, series.p99]);
    const last = frames[frames.length - 1];
    if (!last) return;
    const show = (selector, value, digits) => {
      $(selector).textContent = value === null ? "–" : value.toFixed(digits);
    };
    show("[data-testid=p99]", figure(last, "p99_ms"), 0);
    show("[data-testid=rps]", figure(last, "rps"), 1);
    show("[data-testid=error-ratio]", figure(last, "error_ratio"), 3);
    show("[data-testid=success]", number(last.figures["users.success_ratio"]), 3);
  }

  function setState(next, reason) {
    state = next;
    const badge = $("[data-testid=lab-state]");
    badge.textContent = next.charAt(0).toUpperCase() + next.slice(1);
    const waiting = $("[data-testid=lab-waiting]");
    waiting.textContent =
      next === "requested" || next === "starting"
        ? "Starting your sandbox… the charts begin as soon as it answers."
        : next === "expired"
          ? "This lab has expired: its sandbox is gone."
          : next === "stopped"
            ? "This lab is stopped."
            : "";
    const problem = $("[data-testid=lab-problem]");
    problem.hidden = !reason;
    problem.textContent = reason || "";
    const retry = $("[data-testid=lab-retry]");
    if (retry) retry.hidden = !["failed", "stopped", "expired"].includes(next);
  }

  // A message for the learner with something to do about it (an incident drill's "I found
  // it"): the button posts to the address the message names.
  function notice(data) {
    const box = $("#lab-notice");
    if (data.kind === "drill-ended") {
      box.hidden = true;
      return;
    }
    if (!data.action || !data.message) return;
    box.replaceChildren();
    const text = document.createElement("p");
    text.textContent = data.message;
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = data.action.label;
    button.dataset.testid = "notice-action";
    button.addEventListener("click", async () => {
      button.disabled = true;
      const token = document.querySelector("input[name=csrfmiddlewaretoken]");
      const answer = await fetch(data.action.url, {
        method: "POST",
        headers: { Accept: "application/json", "X-CSRFToken": token ? token.value : "" },
        credentials: "same-origin",
      });
      const body = await answer.json().catch(() => ({}));
      text.textContent = answer.ok ? "Noted. Now find the cause and mitigate it." : body.message || "That did not work.";
      button.remove();
    });
    box.append(text, button);
    box.hidden = false;
  }

  function showError(message) {
    const box = $("#lab-error");
    box.hidden = !message;
    box.textContent = message || "";
  }

  // One panel per active scenario, one small chart per metric it declares.
  const panels = {};
  function scenarioPanels(frame) {
    const readings = frame.scenario_metrics || {};
    for (const slug of Object.keys(panels)) {
      if (!(slug in readings)) {
        panels[slug].element.remove();
        delete panels[slug];
      }
    }
    for (const [slug, metrics] of Object.entries(readings)) {
      if (!panels[slug]) {
        const element = document.createElement("figure");
        element.dataset.panel = slug;
        const title = document.querySelector(`[data-scenario="${slug}"] summary`);
        const caption = document.createElement("figcaption");
        caption.textContent = `Scenario: ${title ? title.firstChild.textContent.trim() : slug}`;
        element.append(caption);
        $("#scenario-panels").append(element);
        panels[slug] = { element, charts: {}, t: [], values: {} };
      }
      const panel = panels[slug];
      panel.t.push(frame.at);
      if (panel.t.length > POINTS) panel.t.shift();
      for (const metric of metrics) {
        const history = (panel.values[metric.name] ||= []);
        history.push(number(metric.value));
        while (history.length > panel.t.length) history.shift();
        while (history.length < panel.t.length) history.unshift(null);
        if (!panel.charts[metric.name] && typeof uPlot !== "undefined") {
          const box = document.createElement("div");
          box.title = metric.help;
          box.dataset.metric = metric.name;
          panel.element.append(box);
          panel.charts[metric.name] = new uPlot(
            {
              width: Math.max(240, panel.element.clientWidth - 16 || 360),
              height: 120,
              scales: { x: { time: true } },
              legend: { live: false },
              series: [{}, { label: `${metric.name} ${metric.unit}`.trim(), stroke: "#6941c6" }],
            },
            [[], []],
            box,
          );
        }
        if (panel.charts[metric.name]) panel.charts[metric.name].setData([panel.t, history]);
      }
    }
  }

  function applyFrame(frame) {
    frames.push(frame);
    if (frames.length > POINTS) frames.shift();
    if (state === "requested" || state === "starting") setState("running");
    push(frame);
    draw();
    scenarioPanels(frame);
    if (frame.load && typeof frame.load.rate_rps === "number") {
      $("[data-testid=load-now]").textContent = String(frame.load.rate_rps);
    }
    for (const details of document.querySelectorAll("[data-scenario]")) {
      details.querySelector(".badge.on").hidden = !(details.dataset.scenario in (frame.scenarios || {}));
    }
    for (const box of document.querySelectorAll("[data-mitigation]")) {
      if (document.activeElement !== box) box.checked = box.dataset.mitigation in (frame.mitigations || {});
    }
    const timeline = $("#timeline");
    for (const event of frame.events || []) {
      const key = `${event.at}:${event.what}:${event.scenario || event.mitigation || ""}`;
      if (seenEvents.has(key)) continue;
      seenEvents.add(key);
      const item = document.createElement("li");
      const when = new Date(event.at * 1000).toLocaleTimeString();
      item.textContent = `${when} ${event.what} ${event.scenario || event.mitigation || ""}`;
      timeline.prepend(item);
    }
    const logs = $("#logs");
    for (const line of frame.logs || []) {
      const when = new Date((line.time || frame.at) * 1000).toLocaleTimeString();
      logs.textContent += `${when} ${line.level} ${line.service}: ${line.message}\n`;
    }
    const lines = logs.textContent.split("\n");
    if (lines.length > 300) logs.textContent = lines.slice(-300).join("\n");
    logs.scrollTop = logs.scrollHeight;
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}/ws/labs/${config.session}/`);
    socket.onopen = () => {
      retry = 0;
      showError("");
      // Pages built around the lab catch up on what they may have missed while away.
      document.dispatchEvent(new CustomEvent("lab:connected"));
    };
    socket.onmessage = (message) => {
      const data = JSON.parse(message.data);
      if (data.type === "frame") applyFrame(data);
      else if (data.type === "hello") setState(data.session.state, data.session.failure_reason);
      else if (data.type === "state") {
        if (data.event === "expiry_warning") showError("This lab expires in a few minutes: extend it to keep going.");
        else setState(data.state, data.failure_reason);
        if (data.expires_at) expiresAt = Date.parse(data.expires_at);
      } else if (data.type === "error") showError(data.message);
      else if (data.type === "ack") showError("");
      else if (data.type === "progress") {
        if (config.driver) notice(data);
        // Pages built around the lab (a tutorial's guide) hear what happened to progress.
        document.dispatchEvent(new CustomEvent("lab:progress", { detail: data }));
      }
    };
    socket.onclose = (event) => {
      if (event.code >= 4400 && event.code < 4500) {
        showError(event.code === 4403 ? "You may not watch this lab." : "This lab is not available.");
        return;
      }
      retry = Math.min(retry + 1, 6);
      setTimeout(connect, 250 * 2 ** retry); // resumes: the server sends the last frame first
    };
  }

  function send(message) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
    else showError("Reconnecting to the lab… try again in a moment.");
  }

  function parameters(form) {
    const values = {};
    for (const input of form.querySelectorAll("input, select")) {
      if (input.type === "checkbox") values[input.name] = input.checked;
      else if (input.dataset.kind === "int") values[input.name] = parseInt(input.value, 10);
      else if (input.dataset.kind === "float") values[input.name] = parseFloat(input.value);
      else values[input.name] = input.value;
    }
    return values;
  }

  for (const form of document.querySelectorAll("form.control")) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (!form.reportValidity()) return;
      send({ type: "scenario", slug: form.dataset.slug, enabled: true, parameters: parameters(form) });
    });
    const off = form.querySelector("[data-action=disable]");
    if (off) off.addEventListener("click", () => send({ type: "scenario", slug: form.dataset.slug, enabled: false }));
  }
  $("#load").addEventListener("submit", (event) => {
    event.preventDefault();
    const settings = {};
    for (const input of event.target.querySelectorAll("input")) {
      if (input.value !== "") settings[input.name] = Number(input.value);
    }
    send({ type: "load", ...settings });
  });
  for (const box of document.querySelectorAll("[data-mitigation]")) {
    box.addEventListener("change", () => send({ type: "mitigation", slug: box.dataset.mitigation, enabled: box.checked }));
  }
  $("#service").addEventListener("change", rebuild);

  setInterval(() => {
    const countdown = $("[data-testid=countdown]");
    if (!expiresAt || state !== "running") {
      countdown.textContent = "";
      return;
    }
    const left = Math.max(0, Math.round((expiresAt - Date.now()) / 1000));
    countdown.textContent = `${Math.floor(left / 60)} min ${String(left % 60).padStart(2, "0")} s left`;
  }, 1000);

  connect();
})();
