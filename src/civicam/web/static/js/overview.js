// Overview: fill in today's people and compliance per region and the open alerts, when analytics exists.
"use strict";
(function () {
  const me = document.currentScript;
  const { api, pct, people, startOfToday, say } = civicam;
  const note = document.getElementById("analytics-note");
  if (me.dataset.analytics !== "1") return;
  const from = encodeURIComponent(startOfToday().toISOString());
  let failed = false;
  for (const row of document.querySelectorAll("tr[data-region]")) {
    const id = row.dataset.region;
    api("GET", `/api/analytics/region/${id}?interval=1d&from=${from}`).then((d) => {
      row.querySelector("[data-people]").textContent = d.total ? people(d.total, d.min_cell_size) : 0;
      row.querySelector("[data-compliance]").textContent = d.total ? pct(d.total.compliance) : "–";
    }).catch((e) => { if (!failed) { failed = true; say(note, "Analytics not available: " + e.message); } });
    api("GET", `/api/alerts?state=open&region_id=${id}&limit=1000`).then((list) => {
      row.querySelector("[data-alerts]").textContent = list.length;
    }).catch(() => {});
  }
  api("GET", "/api/alerts?state=open&limit=1000").then((list) => {
    const bySite = new Map();
    for (const a of list) bySite.set(String(a.site_id), (bySite.get(String(a.site_id)) || 0) + 1);
    for (const row of document.querySelectorAll("tr[data-site]")) {
      const n = bySite.get(row.dataset.site) || 0;
      const cell = row.querySelector("[data-alerts]");
      cell.textContent = n;
      if (n) cell.classList.add("alerting");
    }
  }).catch(() => {});
})();
