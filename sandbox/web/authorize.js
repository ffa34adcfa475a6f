// The consent page of Mattermost's OAuth 2.0 service provider, as the web app's
// components/authorize/authorize.tsx does it. GET /oauth/authorize serves this client when a signed-in
// person has not approved the app yet (web/oauth.go authorizeOAuthPage); the page reads the app's public
// info (GET /api/v4/oauth/apps/{client_id}/info), and:
// - Allow posts the request to POST /oauth/authorize (JSON, session cookie, X-Requested-With) and follows
//   the `redirect` it answers (the callback with ?code=&state=);
// - Deny sends the browser to `redirect_uri + "?error=access_denied"`, exactly as the web app does: no
//   state, and a plain "?" even when the redirect URI has a query of its own.

import { Api } from "./api.js";

const $ = (selector) => document.querySelector(selector);

export async function showAuthorize(api) {
  const params = new URLSearchParams(location.search);
  const clientId = params.get("client_id");
  // As the web app: a client id that is not [a-z0-9]+ shows nothing at all.
  if (!clientId || !/^[a-z0-9]+$/.test(clientId)) return;
  const app = await api.get(`/oauth/apps/${encodeURIComponent(clientId)}/info`);
  for (const id of ["#authorize-app-name", "#authorize-app-name-2", "#authorize-app-name-3"]) {
    $(id).textContent = app.name;
  }
  $("#authorize").hidden = false;
  $("#authorize-allow").addEventListener("click", async () => {
    $("#authorize-error").textContent = "";
    try {
      const answer = await new Api("").post("/oauth/authorize", {
        response_type: params.get("response_type"),
        client_id: clientId,
        redirect_uri: params.get("redirect_uri"),
        state: params.get("state"),
        // The web app reads the scope from a parameter named "store" (authorize.tsx handleAllow), so
        // it always sends null and the server takes its default scope "user". Kept, to behave the same.
        scope: params.get("store"),
      });
      if (answer && answer.redirect) location.href = answer.redirect;
    } catch (err) {
      $("#authorize-error").textContent = err.message;
    }
  });
  $("#authorize-deny").addEventListener("click", () => {
    const redirectUri = params.get("redirect_uri");
    if (redirectUri && (redirectUri.startsWith("https://") || redirectUri.startsWith("http://"))) {
      location.href = `${redirectUri}?error=access_denied`;
      return;
    }
    $("#authorize-error").textContent = "This app gave no address to return to.";
  });
}
