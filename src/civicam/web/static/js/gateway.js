// Site page: the site gateway's enrolment (issue, rotate, revoke its token) and what it last reported.
"use strict";
(function () {
  const card = document.getElementById("gateway");
  if (!card) return;
  const id = card.dataset.site;
  const { api, say, fmtDateTime } = civicam;

  async function load() {
    try {
      const g = await api("GET", `/api/sites/${id}/gateway`);
      let text = g.enrolled ? `Enrolled (token issued ${fmtDateTime(new Date(g.token_issued))}).` : "No gateway enrolled.";
      if (g.last_contact) text += ` Last contact ${fmtDateTime(new Date(g.last_contact))}.`;
      const h = g.health;
      if (h) text += ` Spool ${Math.round(h.spool_bytes / 1e6)} of ${Math.round(h.quota_bytes / 1e6)} MB, ${h.pending_segments} segment(s) waiting, upload lag ${Math.round(h.upload_lag_s)} s.`;
      say("gateway-status", text);
    } catch (e) { say("gateway-status", e.message, "error"); }
  }

  card.addEventListener("click", async (ev) => {
    const action = ev.target && ev.target.dataset ? ev.target.dataset.action : null;
    if (!action) return;
    if (action !== "issue" && !confirm(`${action === "rotate" ? "Rotate" : "Revoke"} the token? The gateway's current token stops working at once.`)) return;
    try {
      const r = await api("POST", `/api/sites/${id}/token`, { action });
      if (r.token) say("gateway-msg", `Token (shown once): ${r.token}  Hub certificate SHA-256 to pin: ${r.hub_fingerprint || "none (serve with TLS)"}`, "ok");
      else say("gateway-msg", `${r.revoked} token(s) revoked.`, "ok");
      load();
    } catch (e) { say("gateway-msg", e.message, "error"); }
  });
  load();
})();
