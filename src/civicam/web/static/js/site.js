// Site page: compliance per hour and per day (chart.js) and the site's alert history.
"use strict";
(function () {
  const me = document.currentScript;
  const id = me.dataset.site;
  const { api, el, say, pct, people, fmtDateTime } = civicam;
  const charts = [];

  // Suppressed buckets (too few people to publish) have null figures: chart.js leaves a gap there.
  function draw(canvas, buckets, label, fmt) {
    const labels = buckets.map((b) => fmt(new Date(b.start)));
    const chart = new Chart(canvas, {
      data: {
        labels,
        datasets: [
          { type: "bar", label: "Compliance %", data: buckets.map((b) => (b.compliance === null ? null : Math.round(b.compliance * 1000) / 10)), backgroundColor: "#2b7a4b", yAxisID: "y" },
          { type: "line", label: "People", data: buckets.map((b) => b.people), borderColor: "#1f4e9c", backgroundColor: "#1f4e9c", yAxisID: "y1", tension: 0.2, pointRadius: 2 },
        ],
      },
      options: {
        animation: false, maintainAspectRatio: false, responsive: true,
        scales: { y: { min: 0, max: 100, title: { display: true, text: "% masked" } },
                  y1: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false }, title: { display: true, text: "people" } } },
        plugins: { legend: { position: "bottom" }, title: { display: false, text: label } },
      },
    });
    canvas.dataset.points = String(buckets.length);
    charts.push(chart);
  }

  async function load() {
    const now = new Date();
    const hourFrom = new Date(now - 24 * 3600e3), dayFrom = new Date(now - 14 * 86400e3);
    try {
      const [h, d] = await Promise.all([
        api("GET", `/api/analytics/site/${id}?interval=1h&from=${encodeURIComponent(hourFrom.toISOString())}`),
        api("GET", `/api/analytics/site/${id}?interval=1d&from=${encodeURIComponent(dayFrom.toISOString())}`),
      ]);
      if (!window.Chart) { say("chart-msg", "The chart library is missing (run 'make web').", "error"); return; }
      draw(document.getElementById("chart-hour"), h.buckets, "hour", (t) => `${String(t.getHours()).padStart(2, "0")}:00`);
      draw(document.getElementById("chart-day"), d.buckets, "day", (t) => `${t.getMonth() + 1}/${t.getDate()}`);
      say("chart-msg", h.total ? `Last 24 hours: ${people(h.total, h.min_cell_size)} people, compliance ${pct(h.total.compliance)}.` : "No people counted in the last 24 hours yet.");
    } catch (e) { say("chart-msg", "Analytics not available: " + e.message); }
  }

  async function alerts() {
    const box = document.getElementById("site-alerts");
    try {
      const list = await api("GET", `/api/alerts?site_id=${id}&limit=20`);
      if (!list.length) { box.replaceChildren(el("p", { class: "empty", text: "No alerts for this site." })); return; }
      box.replaceChildren(el("ul", { class: "alerts" }, ...list.map((a) => el("li", {},
        el("span", { class: "badge " + (a.state === "open" ? "st-rejected" : "st-accepted"), text: a.state }), " ",
        `${fmtDateTime(new Date(a.opened_at))}: compliance ${pct(a.compliance)} under ${pct(a.threshold)} (${a.people} people)`))));
    } catch (e) { box.textContent = "Alerts not available: " + e.message; }
  }
  load(); alerts();
})();
