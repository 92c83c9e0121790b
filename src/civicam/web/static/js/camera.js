// Camera page: live player, recordings timeline with gaps, click-to-play-back, audited export, analytics.
"use strict";
(function () {
  const me = document.currentScript;
  const id = me.dataset.camera;
  const $ = (x) => document.getElementById(x);
  const { api, el, say, fmtTime, fmtDateTime, toLocalInput, pct, people, startOfToday } = civicam;

  // --- player -------------------------------------------------------------------------------------
  const video = $("player");
  let player = null, unblurredReason = null;
  const modeLabel = document.querySelector("[data-testid=player-mode]");
  function q(extra) {
    const p = new URLSearchParams(extra || {});
    if (unblurredReason) p.set("unblurred_reason", unblurredReason);
    const s = p.toString();
    return s ? "?" + s : "";
  }
  function started() {
    $("start-box").hidden = true; $("go-live").hidden = false; modeLabel.hidden = false;
  }
  function live() {
    if (!player) return;
    started();
    modeLabel.textContent = unblurredReason ? "live · unblurred" : "live";
    say("player-msg", "");
    player.play(`/api/cameras/${id}/live.m3u8${q()}`, true);
  }
  function playback(from, to) {
    if (!player) return;
    started();
    modeLabel.textContent = `playback ${fmtTime(from)}–${fmtTime(to)}${unblurredReason ? " · unblurred" : ""}`;
    say("player-msg", `Playing back ${fmtDateTime(from)} to ${fmtTime(to)}.`);
    player.play(`/api/cameras/${id}/playback.m3u8${q({ from: from.toISOString(), to: to.toISOString() })}`, false);
  }
  if (video) {
    player = new civicam.Player(video, { overlay: document.querySelector(".frame [data-state]"),
                                         blurBadge: document.querySelector("[data-blur]") });
    // Video starts on request: every start is an audited view, and blurring costs the hub real work.
    $("watch-live").addEventListener("click", live);
    $("go-live").addEventListener("click", live);
    const uf = $("unblur-form");
    if (uf) uf.addEventListener("submit", (ev) => {
      ev.preventDefault();
      unblurredReason = $("unblur-reason").value.trim();
      uf.closest("details").open = false;
      uf.closest("details").querySelector("summary").textContent = `Unblurred — reason: ${unblurredReason}`;
      say("player-msg", "Asking the hub for unblurred video with your stated reason (audited).");
      live();
    });
  }

  // --- timeline -------------------------------------------------------------------------------------
  const tl = $("timeline");
  let range = null;
  async function loadTimeline() {
    if (!tl) return;
    const span = Number($("range").value) * 1000;
    const to = new Date(), from = new Date(to.getTime() - span);
    range = { from, to };
    let data;
    try {
      data = await api("GET", `/api/cameras/${id}/recordings?from=${encodeURIComponent(from.toISOString())}&to=${encodeURIComponent(to.toISOString())}`);
    } catch (e) { say("timeline-msg", "Recordings could not be loaded: " + e.message, "error"); return; }
    tl.replaceChildren();
    const x = (t) => Math.max(0, Math.min(100, ((t - from) / span) * 100));
    const segs = data.segments || [], gaps = data.gaps || [];
    // Merge touching segments into runs so a day of 4 s segments stays a handful of elements.
    const runs = [];
    for (const s of segs) {
      const a = new Date(s.start), b = new Date(s.end), last = runs[runs.length - 1];
      if (last && a - last.b < 1500) last.b = b; else runs.push({ a, b });
    }
    for (const r of runs) tl.append(el("div", { class: "rec", style: `left:${x(r.a)}%;width:${Math.max(0.2, x(r.b) - x(r.a))}%`, title: `recorded ${fmtTime(r.a)}–${fmtTime(r.b)}` }));
    for (const g of gaps) {
      const a = new Date(g.start), b = g.end ? new Date(g.end) : to;
      tl.append(el("div", { class: "gap", style: `left:${x(a)}%;width:${Math.max(0.3, x(b) - x(a))}%`, title: `gap ${fmtTime(a)}–${fmtTime(b)}: ${g.reason}${g.detail ? " (" + g.detail + ")" : ""}`, "data-gap": "" }));
    }
    const axis = $("timeline-axis"); axis.replaceChildren();
    for (let i = 0; i <= 4; i++) axis.append(el("span", { style: `left:${i * 25}%`, text: fmtTime(new Date(from.getTime() + (span * i) / 4)) }));
    tl.dataset.segments = String(segs.length);
    if (!segs.length) say("timeline-msg", "No recordings yet in this period.");
    else say("timeline-msg", `${segs.length} segment(s), ${gaps.length} gap(s). Click the timeline (or press Enter on it) to play back one minute from that moment.`);
    if (segs.length && $("exp-from") && !$("exp-from").value) {
      const end = new Date(segs[segs.length - 1].end), start = new Date(Math.max(new Date(segs[0].start), end - 30000));
      $("exp-from").value = toLocalInput(start); $("exp-to").value = toLocalInput(end);
    }
  }
  if (tl && me.dataset.recordings === "1") {
    tl.addEventListener("click", (ev) => {
      if (!range) return;
      const box = tl.getBoundingClientRect();
      const t = new Date(range.from.getTime() + ((ev.clientX - box.left) / box.width) * (range.to - range.from));
      const end = new Date(Math.min(t.getTime() + 60000, Date.now()));
      playback(t, end);
    });
    tl.addEventListener("keydown", (ev) => {  // keyboard: Enter plays back the last minute
      if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); const end = new Date(); playback(new Date(end - 60000), end); }
    });
    $("range").addEventListener("change", loadTimeline);
    $("refresh-timeline").addEventListener("click", loadTimeline);
    loadTimeline();
    setInterval(loadTimeline, 30000);
  }

  // --- export ---------------------------------------------------------------------------------------
  const form = $("export-form");
  if (form) form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const from = new Date($("exp-from").value), to = new Date($("exp-to").value);
    if (isNaN(from) || isNaN(to) || to <= from) { say("export-msg", "Choose a start before the end.", "error"); return; }
    const button = form.querySelector("button"); button.disabled = true;
    say("export-msg", "Exporting… (the clip is cut from the recording and its reason written to the audit log)");
    try {
      const body = { from: from.toISOString(), to: to.toISOString(), reason: $("exp-reason").value.trim() };
      if (unblurredReason) body.unblurred_reason = unblurredReason;  // stated above; the API checks the permission
      let res = await api("POST", `/api/cameras/${id}/exports`, body);
      // Written in the background (a blurred clip can take minutes): poll its status until it ends.
      while (res.status === "running") {
        say("export-msg", `Export #${res.id} is being written${res.unblurred ? "" : " with faces blurred"}…`);
        await new Promise((r) => setTimeout(r, 1000));
        res = { ...res, ...(await api("GET", res.status_url)) };
      }
      if (res.status !== "done") throw new Error(res.error || res.status);
      const msg = $("export-msg"); say(msg, `Export #${res.id} ready (${Math.round((res.bytes || 0) / 1024)} KiB${res.unblurred ? ", unblurred" : ""}). `, "ok");
      msg.append(el("a", { href: res.download, "data-testid": "export-download", download: "", text: "Download the clip" }));
    } catch (e) { say("export-msg", "Export failed: " + e.message, "error"); }
    finally { button.disabled = false; }
  });

  // --- analytics ------------------------------------------------------------------------------------
  const an = $("cam-analytics");
  if (an && me.dataset.analytics === "1") {
    api("GET", `/api/analytics/camera/${id}?interval=1d&from=${encodeURIComponent(startOfToday().toISOString())}`)
      .then((d) => { const t = d.total; say(an, t ? `Today: ${people(t, d.min_cell_size)} people counted, compliance ${pct(t.compliance)}.` : "No people counted today yet."); })
      .catch((e) => say(an, "Analytics not available: " + e.message));
    // Suitability and lag come from the hub's live analytics (median face height over recent people).
    const su = $("cam-suitability");
    api("GET", "/api/analytics/health")
      .then((h) => {
        const c = (h.cameras || []).find((x) => String(x.camera_id) === String(id));
        if (!c) { say(su, h.running ? "Suitability for mask analytics: no segment analysed yet." : "Suitability for mask analytics: analytics is not running on this hub."); return; }
        const s = c.suitability;
        const lag = c.lag_s === null ? "" : ` Analysis runs ${Math.round(c.lag_s)} s behind recording.`;
        say(su, `Suitability for mask analytics: ${s.suitable ? "suitable" : "not suitable"} (${s.reason}).${lag}`);
      })
      .catch(() => {});
  }
})();
