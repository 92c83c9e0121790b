// Onboarding wizard: add the camera through the API, probe it as a background job, poll its progress.
"use strict";
(function () {
  const me = document.currentScript;
  const $ = (x) => document.getElementById(x);
  const { api, el, say } = civicam;
  let cameraId = me.dataset.existing ? Number(me.dataset.existing) : null;

  function step(n) {
    for (const i of [1, 2, 3]) {
      const li = document.querySelector(`.steps [data-step="${i}"]`);
      li.classList.toggle("current", i === n); li.classList.toggle("done", i < n);
    }
    if (n >= 2) $("step-2").hidden = false;
    if (n === 3) $("step-3").hidden = false;
  }

  async function probe() {
    step(2);
    $("step-3").hidden = true;
    say("probe-status", "Starting the probe…");
    let job;
    for (let attempt = 0; ; attempt++) {
      try { job = await api("POST", "/web/api/probe-jobs", { camera_id: cameraId }); break; }
      catch (e) {
        // A camera added a moment ago may not be visible yet (the API commits just after answering): retry briefly.
        if (e.status === 404 && attempt < 10) { await new Promise((r) => setTimeout(r, 300)); continue; }
        say("probe-status", "The probe could not start: " + e.message, "error"); return;
      }
    }
    const bar = $("probe-progress");
    for (;;) {
      const total = job.expected_s + 1;
      bar.value = Math.min(95, (100 * job.elapsed_s) / total);
      if (job.state !== "running" && job.state !== "queued") break;
      const phase = job.state === "queued" ? "waiting for a free probe slot" : job.elapsed_s < 1 ? "connecting to the camera" : job.elapsed_s < job.expected_s ? "reading the stream" : "measuring and judging";
      say("probe-status", `Probing: ${phase} (${job.elapsed_s.toFixed(1)} s of about ${job.expected_s} s).`);
      await new Promise((r) => setTimeout(r, 400));
      try { job = await api("GET", `/web/api/probe-jobs/${job.id}`); }
      catch (e) { say("probe-status", "Lost track of the probe: " + e.message + " Open the camera page to see its result.", "error"); return; }
    }
    bar.value = 100;
    if (job.state === "failed") { say("probe-status", "The probe failed: " + job.error, "error"); return; }
    say("probe-status", `Probe finished in ${job.elapsed_s.toFixed(1)} s.`, "ok");
    show(job.result);
  }

  function show(r) {
    step(3);
    const v = $("verdict");
    v.textContent = r.verdict; v.className = "badge st-" + r.verdict;
    const m = r.measured || {};
    $("measured").replaceChildren(
      el("dt", { text: "Resolution" }), el("dd", { text: m.width ? `${m.width}×${m.height}` : "–" }),
      el("dt", { text: "Frame rate" }), el("dd", { text: m.fps ? `${m.fps.toFixed(1)} fps` : "–" }),
      el("dt", { text: "Codec" }), el("dd", { text: m.codec || "–" }),
      el("dt", { text: "Bitrate" }), el("dd", { text: m.bitrate_kbps ? `${Math.round(m.bitrate_kbps)} kbit/s` : "–" }),
    );
    const box = $("reasons");
    if (!r.reasons || !r.reasons.length) {
      box.replaceChildren(el("p", { class: "msg ok", text: r.verdict === "accepted" ? "The camera meets the policy. Recording starts within moments." : "No reasons were given." }));
    } else {
      box.replaceChildren(el("h3", { text: r.verdict === "accepted" ? "Notes" : "Why, and what to fix" }),
        el("ul", { class: "reasons" }, ...r.reasons.map((x) => el("li", { "data-code": x.code },
          el("strong", { text: x.message }), " ", el("code", { text: x.code }),
          x.meaning ? el("div", { text: x.meaning }) : null,
          el("div", { class: "fix", text: "What to fix: " + x.fix }))))
      );
    }
    $("camera-link").href = `/cameras/${cameraId}`;
    $("verdict").focus && $("step-3").scrollIntoView({ block: "nearest" });
  }

  const form = $("camera-form");
  if (form) form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const button = form.querySelector("button[type=submit]"); button.disabled = true;
    say("add-msg", "Adding the camera…");
    const body = { site_id: Number($("site").value), name: $("name").value.trim(), url: $("url").value.trim() };
    if ($("cam-user").value) body.username = $("cam-user").value;
    if ($("cam-pass").value) body.password = $("cam-pass").value;
    try {
      const cam = await api("POST", "/api/cameras", body);
      cameraId = cam.id;
      say("add-msg", `Camera #${cam.id} added (pending until the probe decides).`, "ok");
      form.querySelectorAll("input,select,button").forEach((x) => { x.disabled = true; });
      await probe();
    } catch (e) { say("add-msg", "The camera was not added: " + e.message, "error"); button.disabled = false; }
  });
  $("probe-again").addEventListener("click", probe);
  if (cameraId) probe();
})();
