import Mustache
import WebLook

/// The buyer's pages, as AWS Marketplace shows them (much simplified). Mustache escapes every
/// value; the auto-submitting form is the "Set up your account" redirect of the real service.
enum BuyerPages {
    static let library: MustacheLibrary = {
        var library = MustacheLibrary()
        let templates = [
            "layout-head": """
            <!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>{{title}} - AWS Marketplace (simulator)</title><link rel="stylesheet" href="\(WebLook.stylesheetPath)"></head>
            <body><header class="top"><span>AWS Marketplace <small>(local simulator)</small></span></header><main>
            """,
            "sign-in": """
            {{> layout-head}}<h1>Sign in to AWS</h1><div class="card"><p>Choose an IAM identity of AWS account {{accountID}}:</p>
            <ul>{{#identities}}<li><a href="/buyer/offers/{{offerID}}?as={{name}}">{{name}}</a></li>{{/identities}}</ul></div></main></body></html>
            """,
            "offer": """
            {{> layout-head}}<h1>Private offer: {{productName}}</h1><div class="card">
            <p>Offered to AWS account {{buyerAccountID}}; you are signed in as {{identity}}.</p>
            <table><tr><th>Committed amount</th><td>USD {{committedAmountUSD}}</td></tr>
            <tr><th>Term</th><td>{{termMonths}} months</td></tr>
            <tr><th>Offer expires</th><td>{{expiresAt}}</td></tr>
            {{#dimensions}}<tr><th>{{name}}</th><td>{{quantity}}</td></tr>{{/dimensions}}</table>
            <form method="post" action="/buyer/offers/{{offerID}}/subscribe"><input type="hidden" name="as" value="{{identity}}">
            <button type="submit">Accept terms and subscribe</button></form></div></main></body></html>
            """,
            "subscription": """
            {{> layout-head}}<h1>Subscribed: {{productName}}</h1><div class="card">
            <p>Customer {{customerIdentifier}}, AWS account {{accountID}}, state {{state}}.</p>
            <form method="post" action="/buyer/subscriptions/{{customerIdentifier}}/setup"><input type="hidden" name="as" value="{{identity}}">
            <button type="submit" id="setup">Set up your account</button></form>
            <form method="post" action="/buyer/subscriptions/{{customerIdentifier}}/cancel"><input type="hidden" name="as" value="{{identity}}">
            <button type="submit" class="secondary">Cancel subscription</button></form></div></main></body></html>
            """,
            "setup": """
            {{> layout-head}}<p>Taking you to the seller to set up your account...</p>
            <form id="fulfillment" method="post" action="{{fulfillmentURL}}">
            <input type="hidden" name="x-amzn-marketplace-token" value="{{token}}">
            <noscript><button type="submit">Continue</button></noscript></form>
            <script>document.getElementById("fulfillment").submit();</script></main></body></html>
            """,
            "problem": """
            {{> layout-head}}<h1>{{title}}</h1><div class="card"><p id="message">{{message}}</p></div></main></body></html>
            """
        ]
        for (name, text) in templates {
            try! library.register(MustacheTemplate(string: text), named: name)
        }
        return library
    }()

    static func render(_ name: String, _ values: [String: Any]) -> String {
        library.render(values, withTemplate: name) ?? ""
    }
}
