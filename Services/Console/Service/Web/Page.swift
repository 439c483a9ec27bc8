import Hummingbird
import Mustache
import WebLook

/// One page to answer with: a template, its values, and the problems to list at the top.
struct Page {
    var status: HTTPResponse.Status = .ok
    var title: String
    var template: String
    var values: [String: Any] = [:]
    var fields: [Field] = []
    var errors: [PageError] = []
    var notice: String?
    /// Reload after this many seconds (the billing page while BINDING; works without script).
    var refreshSeconds: Int?

    /// A page that says what happened and what to do next, with links onward.
    static func message(_ status: HTTPResponse.Status = .ok, title: String, _ text: String, links: [(href: String, text: String)] = []) -> Page {
        Page(
            status: status, title: title, template: "message",
            values: ["message": text, "links": links.map { ["href": $0.href, "text": $0.text] }])
    }

    /// Sets each error beside its field (the summary at the top lists them all).
    mutating func attach(_ problems: [PageError]) {
        errors += problems
        for problem in problems {
            if let index = fields.firstIndex(where: { $0.name == problem.field }) { fields[index].error = problem.message }
        }
    }
}

/// The console's templates. Mustache escapes every `{{value}}`; the one unescaped slot is the
/// body the layout wraps, itself rendered from a template.
enum PageTemplates {
    static let library: MustacheLibrary = {
        var library = MustacheLibrary()
        for (name, text) in templates {
            do {
                try library.register(MustacheTemplate(string: text), named: name)
            } catch {
                fatalError("console template \(name) does not parse: \(error)")
            }
        }
        return library
    }()

    static func render(_ page: Page, csrf: String, signedInEmail: String?) -> String {
        var values = page.values
        values["title"] = values["title"] ?? page.title
        values["csrf"] = csrf
        values["fields"] = page.fields.map(\.mustache)
        let body = library.render(values, withTemplate: page.template) ?? ""
        let layout: [String: Any] = [
            "title": page.title, "body": body, "csrf": csrf, "stylesheet": WebLook.stylesheetPath,
            "signedIn": signedInEmail != nil, "email": signedInEmail ?? "",
            "hasNotice": page.notice != nil, "notice": page.notice ?? "",
            "hasErrors": !page.errors.isEmpty,
            "errors": page.errors.map { ["hasField": $0.field != nil, "field": $0.field ?? "", "message": $0.message] },
            "hasRefresh": page.refreshSeconds != nil, "refreshSeconds": page.refreshSeconds ?? 0
        ]
        return library.render(layout, withTemplate: "layout") ?? ""
    }

    static let templates: [String: String] = [
        "layout": """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{{title}} - Cloud Database console</title><link rel="stylesheet" href="{{stylesheet}}">
        {{#hasRefresh}}<meta http-equiv="refresh" content="{{refreshSeconds}}">{{/hasRefresh}}</head>
        <body><header class="top"><a href="/">Cloud Database console</a>
        {{#signedIn}}<div class="who"><span>Signed in as <strong id="signed-in-as">{{email}}</strong></span><a href="/organizations">Organizations</a>
        <form class="inline" method="post" action="/logout"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="secondary">Sign out</button></form></div>{{/signedIn}}
        </header><main>
        {{#hasErrors}}<div class="error-summary" role="alert" id="error-summary"><h2>There is a problem</h2><ul>
        {{#errors}}<li>{{#hasField}}<a href="#{{field}}">{{message}}</a>{{/hasField}}{{^hasField}}{{message}}{{/hasField}}</li>{{/errors}}</ul></div>{{/hasErrors}}
        {{#hasNotice}}<p class="notice" role="status" id="notice">{{notice}}</p>{{/hasNotice}}
        {{{body}}}
        </main></body></html>
        """,
        "fields": """
        {{#fields}}{{#isHidden}}<input type="hidden" name="{{name}}" value="{{value}}">{{/isHidden}}{{^isHidden}}
        <label for="{{name}}">{{label}}</label>{{#hasHint}}<p class="hint" id="{{name}}-hint">{{hint}}</p>{{/hasHint}}
        {{#hasError}}<p class="field-error" id="{{name}}-error">{{error}}</p>{{/hasError}}
        {{#isInput}}<input id="{{name}}" name="{{name}}" type="{{type}}" value="{{value}}" autocomplete="{{autocomplete}}"{{#hasDescription}} aria-describedby="{{describedBy}}"{{/hasDescription}}{{#hasError}} aria-invalid="true"{{/hasError}}>{{/isInput}}
        {{#isSelect}}<select id="{{name}}" name="{{name}}"{{#hasDescription}} aria-describedby="{{describedBy}}"{{/hasDescription}}{{#hasError}} aria-invalid="true"{{/hasError}}>{{#options}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{label}}</option>{{/options}}</select>{{/isSelect}}
        {{#isTextarea}}<textarea id="{{name}}" name="{{name}}"{{#hasDescription}} aria-describedby="{{describedBy}}"{{/hasDescription}}{{#hasError}} aria-invalid="true"{{/hasError}}>{{value}}</textarea>{{/isTextarea}}
        {{/isHidden}}{{/fields}}
        """,
        "csrf": """
        <input type="hidden" name="csrf" value="{{csrf}}">
        """,
        "message": """
        <h1>{{title}}</h1><div class="card"><p id="message">{{message}}</p>
        {{#links}}<p><a href="{{href}}">{{text}}</a></p>{{/links}}</div>
        """,
        "login": """
        <h1>Sign in</h1><div class="card"><form method="post" action="/login" novalidate>{{> csrf}}{{> fields}}
        <button type="submit">Sign in</button></form>
        <p><a href="/forgot-password">Forgot your password?</a></p>
        <p>New here? <a href="/register">Create an account</a>.</p>
        <p><a href="/resend-verification">Send the verification email again</a></p></div>
        """,
        "register": """
        <h1>Create an account</h1><div class="card"><form method="post" action="/register" novalidate>{{> csrf}}{{> fields}}
        <button type="submit">Create account</button></form>
        <p>Already have an account? <a href="/login">Sign in</a>.</p></div>
        """,
        "check-email": """
        <h1>Check your email</h1><div class="card"><p id="message">{{message}}</p>
        <p>The link works once and expires in 24 hours. Nothing arrived after a few minutes? Check your spam folder, or
        <a href="/resend-verification">send it again</a>.</p></div>
        """,
        "verify-email": """
        <h1>Verify your email address</h1><div class="card">
        <form method="post" action="/verify-email" id="token-form" data-autosubmit="{{autosubmit}}" novalidate>{{> csrf}}
        <p>Opening the link from our email fills in the code below. If it is empty, paste the whole link, or the part after <code>#token=</code>.</p>
        {{> fields}}<button type="submit">Verify email address</button></form></div>
        <script src="/static/link-token.js"></script>
        """,
        "email-form": """
        <h1>{{title}}</h1><div class="card"><p>{{intro}}</p><form method="post" action="{{action}}" novalidate>{{> csrf}}{{> fields}}
        <button type="submit">{{button}}</button></form><p><a href="/login">Back to sign in</a></p></div>
        """,
        "reset-password": """
        <h1>Choose a new password</h1><div class="card">
        <form method="post" action="/reset-password" id="token-form" data-autosubmit="no" novalidate>{{> csrf}}{{> fields}}
        <button type="submit">Set new password</button></form></div>
        <script src="/static/link-token.js"></script>
        """,
        "profile": """
        <h1>About your business</h1><div class="card"><p>Before you choose an organization, tell us a little about your company.</p>
        <form method="post" action="/profile" novalidate>{{> csrf}}{{> fields}}<button type="submit">Continue</button></form></div>
        """,
        "offer": """
        <table id="offer"><tr><th scope="row">Product</th><td>{{productCode}}</td></tr>
        <tr><th scope="row">AWS account</th><td id="aws-account">{{awsAccount}}</td></tr>
        {{#entitlements}}<tr><th scope="row">{{name}}</th><td>{{value}}</td></tr>{{/entitlements}}
        <tr><th scope="row">Contract ends</th><td>{{contractEnds}}</td></tr></table>
        """,
        "onboarding": """
        <h1>Your AWS Marketplace contract</h1><div class="card"><p>You subscribed in AWS Marketplace. Link the contract to an
        organization to have its usage billed through your AWS account.</p>{{> offer}}</div>
        <div class="card"><h2>Next: sign in or create an account</h2>
        <p>We keep this registration for you for 24 hours, also while you verify your email address.</p>
        <p><a href="/login?next=/marketplace/onboarding" id="sign-in">Sign in</a> or <a href="/register" id="create-account">create an account</a>.</p></div>
        """,
        "link-choose": """
        <h1>Choose the organization to bill</h1><div class="card">{{> offer}}</div>
        {{#hasOrganizations}}<div class="card"><h2>Your organizations</h2>
        <form method="get" action="/marketplace/link/confirm"><fieldset><legend>Organization to bill through AWS Marketplace</legend>
        {{#organizations}}<label class="choice">{{#selectable}}<input type="radio" name="organizationId" value="{{id}}" id="org-{{id}}"> {{/selectable}}<strong>{{name}}</strong> ({{role}})
        {{#billed}}<br><span class="muted">Already billed through AWS Marketplace.</span>{{/billed}}
        {{#notAdmin}}<br><span class="muted">Only an admin can link billing: ask {{admins}}, or create an organization.</span>{{/notAdmin}}</label>{{/organizations}}
        </fieldset>{{#anySelectable}}<button type="submit">Continue</button>{{/anySelectable}}</form></div>{{/hasOrganizations}}
        <div class="card"><h2>Or create a new organization</h2><form method="post" action="/marketplace/link/new-organization" novalidate>{{> csrf}}{{> fields}}
        <button type="submit">Create organization</button></form></div>
        """,
        "link-confirm": """
        <h1>Confirm billing through AWS Marketplace</h1><div class="card">{{> offer}}</div>
        <div class="card"><p id="statement">From now on, the usage of <strong>{{organizationName}}</strong> is billed to AWS account
        {{awsAccount}} through AWS Marketplace. One contract bills one organization: this contract cannot be linked to another
        organization afterwards.</p>
        <form method="post" action="/marketplace/link/confirm">{{> csrf}}<input type="hidden" name="organizationId" value="{{organizationId}}">
        <button type="submit">Link billing to {{organizationName}}</button></form>
        <p><a href="/marketplace/link">Choose another organization</a></p></div>
        """,
        "billing": """
        <h1>Billing for {{organizationName}}</h1><div class="card">
        {{#linked}}<p><strong id="provider">Billed through AWS Marketplace</strong></p>
        <table><tr><th scope="row">State</th><td><span class="state state-{{state}}" id="state">{{state}}</span></td></tr>
        {{#binding}}<tr><td colspan="2">We are setting up the link with AWS Marketplace; this page refreshes itself.</td></tr>{{/binding}}
        {{#hasFailure}}<tr><th scope="row">Why</th><td id="failure">{{failureReason}}</td></tr>{{/hasFailure}}
        <tr><th scope="row">AWS account</th><td id="aws-account">{{awsAccount}}</td></tr>
        <tr><th scope="row">Product</th><td>{{productCode}}</td></tr>
        {{#entitlements}}<tr><th scope="row">{{name}}</th><td>{{value}}</td></tr>{{/entitlements}}
        <tr><th scope="row">Contract ends</th><td>{{contractEnds}}</td></tr>
        <tr><th scope="row">Linked by</th><td>{{linkedBy}}, {{linkedAt}}</td></tr></table>{{/linked}}
        {{^linked}}<p id="provider">This organization is not billed through AWS Marketplace.</p>{{/linked}}</div>
        <div class="card" id="usage"><h2>Usage in {{usageMonth}}</h2>
        {{#hasUsage}}<table id="usage-totals"><tr><th>Dimension</th><th>Used</th><th>Billed through AWS so far</th></tr>
        {{#usageDimensions}}<tr><td>{{dimension}}</td><td>{{quantity}}</td><td>{{sent}}</td></tr>{{/usageDimensions}}</table>
        <h3>By hour (UTC)</h3><table id="usage-hours"><tr><th>Hour</th><th>Dimension</th><th>Quantity</th><th>State</th></tr>
        {{#usageHours}}<tr><td>{{hour}}</td><td>{{dimension}}</td><td>{{quantity}}</td><td><span class="state state-{{state}}">{{state}}</span> {{explanation}}</td></tr>{{/usageHours}}</table>
        {{#moreHours}}<p class="muted">The latest 48 of {{hourCount}} hours.</p>{{/moreHours}}{{/hasUsage}}
        {{^hasUsage}}<p id="no-usage">No usage recorded this month.</p>{{/hasUsage}}</div>
        <p><a href="/organizations/{{organizationId}}">Members and activity</a></p>
        """,
        "organizations": """
        <h1>Organizations</h1>
        {{#hasInvitations}}<div class="card"><h2>Invitations</h2><table>{{#invitations}}<tr><td>{{organizationName}} as {{role}}</td><td>
        <form class="inline" method="post" action="/invitations/{{organizationId}}/accept">{{> csrf}}<button type="submit">Accept</button></form>
        <form class="inline" method="post" action="/invitations/{{organizationId}}/decline">{{> csrf}}<button type="submit" class="secondary">Decline</button></form>
        </td></tr>{{/invitations}}</table></div>{{/hasInvitations}}
        <div class="card">{{#hasOrganizations}}<table><tr><th>Name</th><th>Your role</th><th></th></tr>
        {{#organizations}}<tr><td><a href="/organizations/{{id}}">{{name}}</a>{{#selected}} <span class="state">selected</span>{{/selected}}</td><td>{{role}}</td><td>
        {{#canSeeBilling}}<a href="/organizations/{{id}}/billing">Billing</a>{{/canSeeBilling}}
        {{^selected}}<form class="inline" method="post" action="/organizations/{{id}}/select">{{> csrf}}<button type="submit" class="secondary">Select</button></form>{{/selected}}
        </td></tr>{{/organizations}}</table>{{/hasOrganizations}}
        {{^hasOrganizations}}<p>You do not belong to any organization yet.</p>{{/hasOrganizations}}</div>
        <div class="card"><h2>Create an organization</h2><form method="post" action="/organizations" novalidate>{{> csrf}}{{> fields}}
        <button type="submit">Create organization</button></form></div>
        """,
        "organization": """
        <h1>{{organizationName}}</h1><p>Your role: {{role}}. {{#canSeeBilling}}<a href="/organizations/{{organizationId}}/billing">Billing</a>{{/canSeeBilling}}</p>
        <div class="card"><h2>Members</h2><table id="members"><tr><th>Member</th><th>Role</th>{{#isAdmin}}<th></th>{{/isAdmin}}</tr>
        {{#members}}<tr><td>{{name}}<br><span class="muted">{{email}}</span></td><td>{{role}}</td>{{#isAdmin}}<td>
        <form class="inline" method="post" action="/organizations/{{organizationId}}/members/{{userId}}/role">{{> csrf}}
        <label for="role-{{userId}}" class="muted">Role</label><select id="role-{{userId}}" name="role">{{#roles}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{value}}</option>{{/roles}}</select>
        <button type="submit" class="secondary">Change role</button></form>
        <form class="inline" method="post" action="/organizations/{{organizationId}}/members/{{userId}}/remove">{{> csrf}}<button type="submit" class="secondary">Remove</button></form>
        </td>{{/isAdmin}}</tr>{{/members}}</table>
        <p class="muted">Every organization keeps at least one ADMIN: the last one cannot be removed or given another role.</p></div>
        {{#isAdmin}}<div class="card"><h2>Add a member</h2><p>They get an invitation to accept on their Organizations page.</p>
        <form method="post" action="/organizations/{{organizationId}}/members" novalidate>{{> csrf}}{{> fields}}<button type="submit">Invite</button></form></div>{{/isAdmin}}
        {{#hasAudit}}<div class="card"><h2>Activity</h2><table id="audit">{{#audit}}<tr><td>{{at}}</td><td>{{action}}</td><td>{{actor}}</td><td>{{detail}}</td></tr>{{/audit}}</table></div>{{/hasAudit}}
        """
    ]
}
