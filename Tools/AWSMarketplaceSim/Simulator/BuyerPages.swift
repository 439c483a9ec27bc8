import Mustache

/// The buyer's pages, as AWS Marketplace shows them (much simplified). Mustache escapes every
/// value; the auto-submitting form is the "Set up your account" redirect of the real service.
enum BuyerPages {
    static let library: MustacheLibrary = {
        var library = MustacheLibrary()
        let templates = [
            "layout-head": """
                <!doctype html><html><head><meta charset="utf-8"><title>{{title}} - AWS Marketplace (simulator)</title></head><body>
                """,
            "offer": """
                {{> layout-head}}<h1>Private offer: {{productName}}</h1>
                <p>Offered to AWS account {{buyerAccountID}}; you are signed in as {{identity}}.</p>
                <table><tr><th>Committed amount</th><td>USD {{committedAmountUSD}}</td></tr>
                <tr><th>Term</th><td>{{termMonths}} months</td></tr>
                <tr><th>Offer expires</th><td>{{expiresAt}}</td></tr>
                {{#dimensions}}<tr><th>{{name}}</th><td>{{quantity}}</td></tr>{{/dimensions}}</table>
                <form method="post" action="/buyer/offers/{{offerID}}/subscribe"><input type="hidden" name="as" value="{{identity}}">
                <button type="submit">Accept terms and subscribe</button></form></body></html>
                """,
            "subscription": """
                {{> layout-head}}<h1>Subscribed: {{productName}}</h1>
                <p>Customer {{customerIdentifier}}, AWS account {{accountID}}, state {{state}}.</p>
                <form method="post" action="/buyer/subscriptions/{{customerIdentifier}}/setup"><input type="hidden" name="as" value="{{identity}}">
                <button type="submit" id="setup">Set up your account</button></form>
                <form method="post" action="/buyer/subscriptions/{{customerIdentifier}}/cancel"><input type="hidden" name="as" value="{{identity}}">
                <button type="submit">Cancel subscription</button></form></body></html>
                """,
            "setup": """
                {{> layout-head}}<p>Taking you to the seller to set up your account...</p>
                <form id="fulfillment" method="post" action="{{fulfillmentURL}}">
                <input type="hidden" name="x-amzn-marketplace-token" value="{{token}}">
                <noscript><button type="submit">Continue</button></noscript></form>
                <script>document.getElementById("fulfillment").submit();</script></body></html>
                """,
            "problem": """
                {{> layout-head}}<h1>{{title}}</h1><p>{{message}}</p></body></html>
                """,
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
