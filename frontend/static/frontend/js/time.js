// Times on pages read as the server writes them: the site's time zone (on <body>), "6 Dec 2026, 14:05",
// whatever the browser's own zone and locale, so one page never shows one moment two ways.
const OPTIONS = {day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23"};

function formatIn(zone) {
  try {
    return new Intl.DateTimeFormat("en-GB", {...OPTIONS, timeZone: zone});
  } catch (unknownZone) {
    // A browser older than the zone's name (a renamed or new zone) refuses it: UTC, marked as such,
    // rather than a page whose script stops here.
    return null;
  }
}

const pageFormat = formatIn(document.body.dataset.timeZone || "UTC");
const format = pageFormat || formatIn("UTC");
const suffix = pageFormat ? "" : " UTC";

export function formatTime(iso) {
  return iso ? format.format(new Date(iso)) + suffix : "";
}
