/// The console's one script: moves an email link's `#token=...` into the page's form. The token
/// travels in the fragment so it never reaches a server log or a Referer; without script, the
/// page asks the buyer to paste it.
enum StaticAssets {
    static let linkTokenScriptPath = "/static/link-token.js"

    static let linkTokenScript = """
        (function () {
          var form = document.getElementById("token-form");
          var match = /(?:#|&)token=([^&]+)/.exec(location.hash);
          if (!form || !match) { return; }
          history.replaceState(null, "", location.pathname);
          form.elements["token"].value = decodeURIComponent(match[1]);
          if (form.dataset.autosubmit === "yes") { form.submit(); }
        })();
        """
}
