// Times on pages read as the server writes them: the site's time zone (on <body>), "6 Dec 2026, 14:05",
// whatever the browser's own zone and locale, so one page never shows one moment two ways.
const format = new Intl.DateTimeFormat("en-GB", {
  timeZone: document.body.dataset.timeZone || "UTC",
  day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
});

export function formatTime(iso) {
  return iso ? format.format(new Date(iso)) : "";
}
