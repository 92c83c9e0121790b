// Alerts: list with filters (site, region, state) and acknowledge.
"use strict";
(function () {
  const me = document.currentScript;
  const { api, el, say, pct, fmtDateTime, fmtTime } = civicam;
  const sites = new Map(JSON.parse(me.dataset.sites || "[]").map((s) => [s.id, s.name]));
  const canAck = me.dataset.canAck === "1";
  const form = document.getElementById("alert-filters");
  const params = new URLSearchParams(location.search);
  for (const k of ["site_id", "region_id", "state"]) if (params.has(k)) form.elements[k].value = params.get(k);

  async function load() {
    const p = new URLSearchParams();
    for (const k of ["site_id", "region_id", "state"]) if (form.elements[k].value) p.set(k, form.elements[k].value);
    p.set("limit", "500");
    history.replaceState(null, "", "/alerts?" + p.toString());
    say("alerts-msg", "Loading…");
    let list;
    try { list = await api("GET", "/api/alerts?" + p.toString()); }
    catch (e) { say("alerts-msg", "Alerts could not be loaded: " + e.message, "error"); return; }
    const rows = list.map((a) => el("tr", { "data-alert": a.id },
      el("td", { class: "num", text: a.id }),
      el("td", {}, el("a", { href: `/sites/${a.site_id}`, text: sites.get(a.site_id) || `site ${a.site_id}` })),
      el("td", { text: fmtDateTime(new Date(a.opened_at)) }),
      el("td", { text: `${fmtTime(new Date(a.window_start))}–${fmtTime(new Date(a.window_end))}` }),
      el("td", { class: "num", text: a.people }), el("td", { class: "num", text: pct(a.compliance) }),
      el("td", { class: "num", text: pct(a.threshold) }),
      el("td", { text: a.state === "acknowledged" ? `acknowledged by ${a.acknowledged_by}` : "open" }),
      el("td", {}, a.state === "open" && canAck ? el("button", { type: "button", onclick: () => ack(a.id) , text: "Acknowledge" }) : null)));
    document.getElementById("alert-rows").replaceChildren(...rows);
    say("alerts-msg", list.length ? `${list.length} alert(s).` : "No alerts match the filters.");
  }
  async function ack(id) {
    try {
      const a = await api("POST", `/api/alerts/${id}/ack`, { note: "" });
      // Update the row from the API's answer (no immediate re-read; the list refreshes on the next filter).
      const row = document.querySelector(`tr[data-alert="${id}"]`);
      if (row) { row.cells[7].textContent = `acknowledged by ${a.acknowledged_by}`; row.cells[8].replaceChildren(); }
      say("alerts-msg", `Alert #${id} acknowledged.`, "ok");
    }
    catch (e) { say("alerts-msg", `Alert #${id} was not acknowledged: ${e.message}`, "error"); }
  }
  form.addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
  load();
})();
