// The two channels to the server, exactly as Mattermost's web app uses them:
// - REST under /api/v4 with the session in the HttpOnly MMAUTHTOKEN cookie that login sets. Every
//   non-GET request carries `X-Requested-With: XMLHttpRequest`, or the server treats the cookie as a
//   CSRF attempt (401); see ParseAuthTokenFromRequest.
// - The WebSocket /api/v4/websocket, authenticated by the same cookie on the upgrade. It resumes with
//   ?connection_id=&sequence_number= after a drop; a `hello` with a new connection id means events
//   were lost, and the caller resyncs over REST.

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.id = (body && body.id) || "";
    this.body = body;
  }
}

export class Api {
  constructor(base = "/api/v4") {
    this.base = base;
  }

  async request(method, path, body) {
    const headers = { "X-Requested-With": "XMLHttpRequest", Accept: "application/json" };
    const init = { method, headers, credentials: "same-origin" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(this.base + path, init);
    const text = await response.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = { message: text };
      }
    }
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  get(path) { return this.request("GET", path); }
  post(path, body = {}) { return this.request("POST", path, body); }
  put(path, body = {}) { return this.request("PUT", path, body); }
}

export class Socket {
  /**
   * onEvent(event) for every server event; onResync() when a fresh session means events may be lost;
   * onState(connected) when the connection comes or goes.
   */
  constructor({ onEvent, onResync, onState }) {
    this.onEvent = onEvent;
    this.onResync = onResync;
    this.onState = onState;
    this.connectionId = "";
    this.nextSeq = 0;
    this.ws = null;
    this.closed = false;
    this.retry = 0;
    this.timer = null;
    this.everConnected = false;
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    let url = `${scheme}//${location.host}/api/v4/websocket`;
    if (this.connectionId) {
      url += `?connection_id=${encodeURIComponent(this.connectionId)}&sequence_number=${this.nextSeq}`;
    }
    return url;
  }

  open() {
    this.closed = false;
    const ws = new WebSocket(this.url());
    this.ws = ws;
    ws.addEventListener("open", () => {
      this.retry = 0;
      this.onState(true);
    });
    ws.addEventListener("message", (msg) => this.receive(msg));
    ws.addEventListener("close", () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.onState(false);
      if (!this.closed) this.reconnectLater();
    });
  }

  receive(msg) {
    let frame;
    try {
      frame = JSON.parse(msg.data);
    } catch {
      return;
    }
    if (frame.seq_reply !== undefined) return; // replies to our own actions: none are sent
    if (frame.event === "hello") {
      const fresh = frame.data.connection_id !== this.connectionId;
      this.connectionId = frame.data.connection_id;
      this.nextSeq = frame.seq + 1;
      // A new session after an earlier one: whatever happened in between was not delivered.
      if (fresh && this.everConnected) this.onResync();
      this.everConnected = true;
      return;
    }
    if (typeof frame.seq === "number") {
      if (frame.seq !== this.nextSeq) {
        // The web app's rule: a gap in seq means a lost event; reconnect and let the server replay.
        this.ws.close();
        return;
      }
      this.nextSeq = frame.seq + 1;
    }
    this.onEvent(frame);
  }

  reconnectLater() {
    const delay = Math.min(5000, 200 * 2 ** this.retry);
    this.retry += 1;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.open(), delay);
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close();
    this.ws = null;
  }
}
