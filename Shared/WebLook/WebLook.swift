/// The plain look the console and the simulator's buyer pages share: one stylesheet, served by
/// each at `/static/look.css` (a file, not inline, so a strict Content-Security-Policy holds).
public enum WebLook {
    public static let stylesheetPath = "/static/look.css"

    public static let stylesheet = """
        :root { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2330; background: #f4f6f8; line-height: 1.45; }
        body { margin: 0; }
        header.top { background: #232f3e; color: #fff; padding: .6rem 1rem; display: flex; justify-content: space-between;
                     align-items: center; flex-wrap: wrap; gap: .5rem; }
        header.top a { color: #fff; font-weight: 600; text-decoration: none; }
        header.top .who { display: flex; gap: .75rem; align-items: center; flex-wrap: wrap; }
        main { max-width: 44rem; margin: 1.5rem auto; padding: 0 1rem; }
        h1 { font-size: 1.6rem; margin: 0 0 1rem; }
        h2 { font-size: 1.2rem; }
        .card { background: #fff; border: 1px solid #d5dbe1; border-radius: 6px; padding: 1rem 1.25rem; margin-bottom: 1rem; }
        label { display: block; font-weight: 600; margin-top: .9rem; }
        .hint { color: #4a5566; font-size: .9rem; margin: .15rem 0 0; }
        input[type=text], input[type=email], input[type=password], select, textarea {
            width: 100%; box-sizing: border-box; padding: .5rem; font-size: 1rem; border: 1px solid #8d99a8; border-radius: 4px; }
        textarea { min-height: 6rem; }
        input[aria-invalid=true], select[aria-invalid=true], textarea[aria-invalid=true] { border: 2px solid #b3261e; }
        button { margin-top: 1rem; padding: .55rem 1.1rem; font-size: 1rem; background: #0b6bcb; color: #fff; border: 0;
                 border-radius: 4px; cursor: pointer; }
        button.secondary { background: #fff; color: #0b6bcb; border: 1px solid #0b6bcb; }
        header.top button.secondary { margin-top: 0; padding: .3rem .7rem; }
        a:focus, button:focus, input:focus, select:focus, textarea:focus { outline: 3px solid #f2a900; outline-offset: 2px; }
        .error-summary { border: 2px solid #b3261e; background: #fdecea; padding: .5rem 1rem; border-radius: 4px; margin-bottom: 1rem; }
        .error-summary h2 { margin: .25rem 0; }
        .field-error { color: #b3261e; font-weight: 600; margin: .2rem 0 0; }
        .notice { border-left: 4px solid #0b6bcb; background: #e8f1fb; padding: .6rem 1rem; }
        .state { display: inline-block; padding: .1rem .5rem; border-radius: 3px; background: #e3e7eb; font-weight: 600; }
        .state-ACTIVE { background: #d7f0dd; } .state-FAILED, .state-CANCELLED { background: #fdecea; } .state-BINDING { background: #fff4d6; }
        table { border-collapse: collapse; width: 100%; }
        th, td { text-align: left; padding: .4rem; border-bottom: 1px solid #e3e7eb; vertical-align: top; }
        form.inline { display: inline; }
        form.inline button, form.inline select { margin-top: 0; width: auto; }
        fieldset { border: 0; padding: 0; margin: 0; }
        .choice { display: block; padding: .5rem; border: 1px solid #d5dbe1; border-radius: 4px; margin-top: .5rem; font-weight: normal; }
        .muted { color: #4a5566; }
        @media (max-width: 30rem) { main { margin-top: 1rem; } h1 { font-size: 1.35rem; } }
        """
}
