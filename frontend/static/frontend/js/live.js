// A websocket that comes back: reconnects with growing pauses after a network or server outage.
// Codes 4403/4404 mean "not yours" and 4401 "the sign-in has ended": retrying would never help, so it stops.

const GIVE_UP = new Set([4401, 4403, 4404]);

export function live(path, { onMessage, onState = () => {} }) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  let socket = null;
  let delay = 1000;
  let stopped = false;
  let timer = null;

  function connect() {
    onState("connecting");
    socket = new WebSocket(`${scheme}//${location.host}${path}`);
    socket.addEventListener("open", () => { delay = 1000; onState("live"); });
    socket.addEventListener("message", (event) => {
      try { onMessage(JSON.parse(event.data)); } catch (error) { console.error(error); }
    });
    socket.addEventListener("close", (event) => {
      if (stopped || GIVE_UP.has(event.code)) { onState("closed", stopped ? null : event.code); return; }
      onState("reconnecting");
      timer = setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    });
  }

  connect();
  return {
    // After a reconnect the page may have missed events: onState("live") is the cue to refetch.
    close() { stopped = true; clearTimeout(timer); socket?.close(); },
  };
}

// The small "Live" / "Reconnecting…" line pages show beside live data.
export function describeState(element) {
  const words = { connecting: "Connecting…", live: "Live updates on", reconnecting: "Reconnecting…", closed: "Live updates off" };
  return (state) => { element.textContent = words[state] || ""; };
}
