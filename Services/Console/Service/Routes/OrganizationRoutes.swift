import Contracts
import Foundation
import Hummingbird
import RPCCore

/// The organizations: the list, invitations, members and roles, the activity trail, and the
/// billing page.
extension ConsoleApp {
    func addOrganizationRoutes(to router: Router<ConsoleRequestContext>) {
        page(router, .get, "organizations") { [self] visit, _ in
            visit.render(try await organizationsPage(visit, newName: "", errors: []))
        }

        page(
            router, .post, "organizations",
            retry: { [self] visit in
                try await organizationsPage(visit, newName: visit.field("name"), errors: [])
            }
        ) { [self] visit, _ in
            switch try await createOrganization(visit) {
            case .created(let organization):
                return visit.redirect("/organizations/\(organization.id)")
            case .refused(let problems):
                var page = try await organizationsPage(visit, newName: visit.field("name"), errors: problems)
                page.status = .badRequest
                return visit.render(page)
            }
        }

        page(
            router, .post, "organizations/:organization/select",
            retry: { [self] visit in
                try await organizationsPage(visit, newName: "", errors: [])
            }
        ) { [self] visit, context in
            let buyer = try requireBuyer(visit)
            _ = try await upstreams.organization.call(
                Organizations.selectOrganization, OrganizationRef(organizationId: context.parameters.get("organization") ?? ""),
                options: asBuyer(visit, buyer))
            return visit.redirect("/organizations")
        }

        for (action, method) in [("accept", Organizations.acceptInvitation.path), ("decline", Organizations.declineInvitation.path)] {
            page(
                router, .post, RouterPath("invitations/:organization/\(action)"),
                retry: { [self] visit in
                    try await organizationsPage(visit, newName: "", errors: [])
                }
            ) { [self] visit, context in
                let buyer = try requireBuyer(visit)
                let ref = OrganizationRef(organizationId: context.parameters.get("organization") ?? "")
                if method == Organizations.acceptInvitation.path {
                    _ = try await upstreams.organization.call(Organizations.acceptInvitation, ref, options: asBuyer(visit, buyer))
                } else {
                    _ = try await upstreams.organization.call(Organizations.declineInvitation, ref, options: asBuyer(visit, buyer))
                }
                return visit.redirect("/organizations")
            }
        }

        page(router, .get, "organizations/:organization") { [self] visit, context in
            visit.render(try await organizationPage(visit, id: context.parameters.get("organization") ?? "", email: "", errors: []))
        }

        page(
            router, .post, "organizations/:organization/members",
            retry: { [self] visit in
                try await organizationPage(visit, id: Self.organizationID(visit), email: visit.field("email"), errors: [])
            }
        ) { [self] visit, context in
            let buyer = try requireBuyer(visit)
            let id = context.parameters.get("organization") ?? ""
            let email = visit.field("email")
            let found = try await upstreams.identity.call(Identity.lookupUsers, LookupUsersRequest(emails: [email]), options: anonymous(visit)).users
            guard let user = found.first else {
                var page = try await organizationPage(
                    visit, id: id, email: email,
                    errors: [
                        PageError(
                            field: "email",
                            message:
                                "Nobody has an account with that address yet. Ask them to create one, then invite them again.")
                    ])
                page.status = .badRequest
                return visit.render(page)
            }
            do throws(RPCError) {
                _ = try await upstreams.organization.call(
                    Organizations.addMember, MemberRequest(organizationId: id, userId: user.id, role: .member),
                    options: asBuyer(visit, buyer))
            } catch {
                guard [.invalidArgument, .failedPrecondition, .alreadyExists].contains(error.code) else { throw error }
                var page = try await organizationPage(
                    visit, id: id, email: email, errors: [PageError(field: "email", message: Problems.sentence(error.message))])
                page.status = .badRequest
                return visit.render(page)
            }
            var page = try await organizationPage(visit, id: id, email: "", errors: [])
            page.notice = "\(user.fullName) (\(user.email)) is invited; they become a member when they accept."
            return visit.render(page)
        }

        memberChange(router, "role") { [self] visit, buyer, organizationID, userID throws(RPCError) in
            guard let role = Role(rawValue: visit.field("role")) else {
                throw RPCError(.invalidArgument, "choose one of the roles in the list")
            }
            _ = try await upstreams.organization.call(
                Organizations.changeMemberRole,
                MemberRequest(organizationId: organizationID, userId: userID, role: role),
                options: asBuyer(visit, buyer))
        }

        memberChange(router, "remove") { [self] visit, buyer, organizationID, userID throws(RPCError) in
            _ = try await upstreams.organization.call(
                Organizations.removeMember, MemberRef(organizationId: organizationID, userId: userID),
                options: asBuyer(visit, buyer))
        }

        page(router, .get, "organizations/:organization/billing") { [self] visit, context in
            let buyer = try requireBuyer(visit)
            let id = context.parameters.get("organization") ?? ""
            let key = buyer.sessionKey + "|" + id
            if let recent = recentBillingPages.cached(key) { return visit.respond(recent) }
            let page = visit.rendered(try await billingPage(visit, id: id))
            if page.status == .ok { recentBillingPages.store(page, for: key) }
            return visit.respond(page)
        }
    }

    /// A change to one member (`/organizations/<id>/members/<user>/<action>`): done, then back to
    /// the organization's page; refused (the last-admin rule), the page again saying why.
    private func memberChange(
        _ router: Router<ConsoleRequestContext>, _ action: String,
        _ change: @escaping @Sendable (Visit, SignedInBuyer, String, String) async throws(RPCError) -> Void
    ) {
        page(
            router, .post, RouterPath("organizations/:organization/members/:user/\(action)"),
            retry: { [self] visit in
                try await organizationPage(visit, id: Self.organizationID(visit), email: "", errors: [])
            }
        ) { [self] visit, context in
            let buyer = try requireBuyer(visit)
            let id = context.parameters.get("organization") ?? ""
            do throws(RPCError) {
                try await change(visit, buyer, id, context.parameters.get("user") ?? "")
            } catch {
                guard error.code == .failedPrecondition || error.code == .invalidArgument else { throw error }
                var page = try await organizationPage(visit, id: id, email: "", errors: [PageError(message: Problems.sentence(error.message))])
                page.status = .conflict
                return visit.render(page)
            }
            return visit.redirect("/organizations/\(id)")
        }
    }

    enum Creation {
        case created(Organization)
        /// organization refused the name (or the 25-organization limit): what to show beside the field.
        case refused([PageError])
    }

    /// CreateOrganization from a form's `name`, for the organizations page and the linking step.
    func createOrganization(_ visit: Visit) async throws -> Creation {
        let buyer = try requireBuyer(visit)
        do throws(RPCError) {
            return .created(
                try await upstreams.organization.call(
                    Organizations.createOrganization, CreateOrganizationRequest(name: visit.field("name")), options: asBuyer(visit, buyer)))
        } catch {
            guard error.code == .invalidArgument || error.code == .failedPrecondition else { throw error }
            return .refused(
                Problems.fieldErrors(error, labels: ["name": "Organization name"]) ?? [
                    PageError(field: "name", message: Problems.sentence(error.message))
                ])
        }
    }

    // MARK: Pages

    func organizationsPage(_ visit: Visit, newName: String, errors: [PageError]) async throws -> Page {
        let buyer = try requireBuyer(visit)
        let options = asBuyer(visit, buyer)
        let organizations = try await upstreams.organization.call(Organizations.listMyOrganizations, Empty(), options: options).organizations
        let selected = try await upstreams.organization.call(Organizations.getSelectedOrganization, Empty(), options: options).organization?.id
        let invitations = try await upstreams.organization.call(Organizations.listMyInvitations, Empty(), options: options).invitations
        var page = Page(
            title: "Organizations", template: "organizations",
            values: [
                "hasOrganizations": !organizations.isEmpty,
                "organizations": organizations.map { organization -> [String: Any] in
                    [
                        "id": organization.id, "name": organization.name, "role": organization.role.rawValue, "selected": organization.id == selected,
                        "canSeeBilling": organization.canReadBilling
                    ]
                },
                "hasInvitations": !invitations.isEmpty,
                "invitations": invitations.map {
                    ["organizationId": $0.organizationId, "organizationName": $0.organizationName, "role": $0.role.rawValue]
                }
            ], fields: [Field(name: "name", label: "Organization name", value: newName, autocomplete: "organization")])
        page.attach(errors)
        return page
    }

    func organizationPage(_ visit: Visit, id: String, email: String, errors: [PageError]) async throws -> Page {
        let buyer = try requireBuyer(visit)
        let options = asBuyer(visit, buyer)
        let organization = try await upstreams.organization.call(Organizations.getOrganization, OrganizationRef(organizationId: id), options: options)
        let members = try await upstreams.organization.call(Organizations.listMembers, OrganizationRef(organizationId: id), options: options).members
        let isAdmin = organization.role == .admin
        let audit =
            isAdmin
            ? try await upstreams.organization.call(Organizations.listAuditEvents, OrganizationRef(organizationId: id), options: options).events : []
        let actors = audit.map(\.actor).filter { !$0.hasPrefix("service:") }.map { $0.hasPrefix("user:") ? String($0.dropFirst(5)) : $0 }
        let users = try await upstreams.users(members.map(\.userId) + audit.compactMap(\.subjectUserId) + actors, clientIP: visit.clientIP)
        var page = Page(
            title: organization.name, template: "organization",
            values: [
                "organizationName": organization.name, "organizationId": organization.id, "role": organization.role.rawValue, "isAdmin": isAdmin,
                "canSeeBilling": organization.canReadBilling,
                "members": members.map { member -> [String: Any] in
                    [
                        "userId": member.userId, "role": member.role.rawValue, "name": users[member.userId]?.fullName ?? "Unknown user",
                        "email": users[member.userId]?.email ?? member.userId,
                        "roles": Role.allCases.map { ["value": $0.rawValue, "selected": $0 == member.role] }
                    ]
                },
                "hasAudit": !audit.isEmpty,
                "audit": audit.prefix(50).map { event -> [String: Any] in
                    [
                        "at": event.at.formatted(.iso8601), "action": event.action.replacingOccurrences(of: "_", with: " "),
                        "actor": Self.actorName(event.actor, users: users),
                        "detail": [event.subjectUserId.flatMap { users[$0]?.email }, event.detail].compactMap { $0 }.joined(separator: ": ")
                    ]
                }
            ], fields: isAdmin ? [.email(email, label: "Their email address")] : [])
        page.attach(errors)
        if !errors.isEmpty { page.status = .badRequest }
        return page
    }

    func billingPage(_ visit: Visit, id: String) async throws -> Page {
        let buyer = try requireBuyer(visit)
        let options = asBuyer(visit, buyer)
        let status: BillingStatus
        do throws(RPCError) {
            status = try await upstreams.marketplaceLink.call(
                MarketplaceLink.getBillingStatus, BillingStatusRequest(organizationId: id), options: options)
        } catch {
            guard error.code == .permissionDenied else { throw error }
            return .message(
                .forbidden, title: "Billing is for admins and billing members",
                "Only ADMIN and BILLING members of this organization can see its billing. Ask one of its admins if you need access.",
                links: [("/organizations/\(id)", "The organization's members"), ("/organizations", "Your organizations")])
        }
        let organization = try await upstreams.organization.call(Organizations.getOrganization, OrganizationRef(organizationId: id), options: options)
        var values: [String: Any] = ["organizationName": organization.name, "organizationId": organization.id, "linked": status.state != nil]
        var page = Page(title: "Billing for \(organization.name)", template: "billing")
        if let state = status.state, let offer = status.offer {
            values.merge(Self.offerValues(offer)) { $1 }
            values["state"] = state.rawValue
            values["binding"] = state == .binding
            values["hasFailure"] = status.failureReason != nil
            values["failureReason"] = status.failureReason ?? ""
            var linker: UserSummary?
            if let linkedBy = status.linkedBy { linker = try await upstreams.users([linkedBy], clientIP: visit.clientIP)[linkedBy] }
            values["linkedBy"] = linker.map { "\($0.fullName) (\($0.email))" } ?? "a former member"
            values["linkedAt"] = status.linkedAt?.formatted(.iso8601) ?? ""
            if state == .binding { page.refreshSeconds = 2 }
        }
        values.merge(
            Self.usageValues(
                try await upstreams.marketplaceLink.call(
                    MarketplaceLink.getUsage, GetUsageRequest(organizationId: id), options: options))
        ) { $1 }
        page.values = values
        return page
    }

    /// The billing page's usage section: this month per dimension, and the latest hours with
    /// where each is on its way to AWS Marketplace.
    static func usageValues(_ report: UsageReport) -> [String: Any] {
        let shown = 48
        return [
            "hasUsage": !report.dimensions.isEmpty, "usageMonth": Self.monthName(report.monthStart),
            "usageDimensions": report.dimensions.map { ["dimension": $0.dimension, "quantity": $0.quantity, "sent": $0.sentQuantity] },
            "usageHours": report.hours.prefix(shown).map { hour -> [String: Any] in
                [
                    "hour": hour.hourStart.formatted(.iso8601), "dimension": hour.dimension, "quantity": hour.quantity,
                    "state": hour.state.rawValue, "explanation": Self.meteringExplanation(hour)
                ]
            },
            "moreHours": report.hours.count > shown, "hourCount": report.hours.count
        ]
    }

    /// "December 2026": the month (UTC) that starts at `monthStart`.
    static func monthName(_ monthStart: Date) -> String {
        var style = Date.FormatStyle(
            date: .omitted, time: .omitted, locale: Locale(identifier: "en_US_POSIX"), timeZone: TimeZone(identifier: "UTC")!)
        style = style.year().month(.wide)
        return monthStart.formatted(style)
    }

    /// What an hour's metering state means to the person reading the page.
    static func meteringExplanation(_ hour: UsageHour) -> String {
        switch hour.state {
        case .open: "Still counting: sent to AWS Marketplace after the hour ends."
        case .frozen: hour.detail.map { "Being sent to AWS Marketplace (\($0))." } ?? "Being sent to AWS Marketplace."
        case .sent: "Billed through AWS Marketplace."
        case .notSubscribed, .duplicate, .refused, .expired:
            "Not billed through AWS Marketplace: \(hour.detail ?? hour.state.rawValue). We have been alerted."
        }
    }

    static func organizationID(_ visit: Visit) -> String {
        let parts = visit.path.split(separator: "/")
        return parts.count > 1 ? String(parts[1]) : ""
    }

    static func actorName(_ actor: String, users: [String: UserSummary]) -> String {
        if actor.hasPrefix("service:") { return "the \(actor.dropFirst("service:".count)) service" }
        let id = actor.hasPrefix("user:") ? String(actor.dropFirst("user:".count)) : actor
        return users[id]?.email ?? actor
    }
}
