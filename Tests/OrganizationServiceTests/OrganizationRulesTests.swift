import ConnectTransport
import Contracts
import Foundation
import GRDB
import RPCCore
import TestSupport
import Testing

/// organization's rules over HTTP/2: the last admin, idempotency, limits, billing links, bad input.
@Suite(.timeLimit(.minutes(3))) struct OrganizationRulesTests {
    static let lastAdmin = RPCError(.failedPrecondition, "an organization needs at least one admin: make another member ADMIN first")

    @Test(arguments: StorageBackend.allCases) func theLastAdminCanNeitherLeaveNorBeRemovedNorDemoted(backend: StorageBackend) async throws {
        try await withStarted(OrganizationHarness.start(listening: false, backend: backend)) { harness in
            let admin = try await harness.user("admin")
            let other = try await harness.user("other")
            let id = try await harness.organization(admin: admin, members: [(other, .member)])
            await #expect(throws: Self.lastAdmin) {
                try await harness.call(Organizations.leaveOrganization, OrganizationRef(organizationId: id), as: admin)
            }
            await #expect(throws: Self.lastAdmin) {
                try await harness.call(Organizations.removeMember, MemberRef(organizationId: id, userId: admin.user.id), as: admin)
            }
            await #expect(throws: Self.lastAdmin) {
                try await harness.call(
                    Organizations.changeMemberRole, MemberRequest(organizationId: id, userId: admin.user.id, role: .member), as: admin)
            }
            // With a second admin, the first may step down.
            _ = try await harness.call(
                Organizations.changeMemberRole, MemberRequest(organizationId: id, userId: other.user.id, role: .admin), as: admin)
            _ = try await harness.call(Organizations.leaveOrganization, OrganizationRef(organizationId: id), as: admin)
            let members = try await harness.call(Organizations.listMembers, OrganizationRef(organizationId: id), as: other).members
            #expect(members.map(\.userId) == [other.user.id] && members[0].role == .admin)
            let actions = try await harness.call(Organizations.listAuditEvents, OrganizationRef(organizationId: id), as: other).events.map(\.action)
            #expect(actions == ["member_left", "role_changed", "member_added", "member_invited", "organization_created"])
        }
    }

    @Test(arguments: StorageBackend.allCases) func twoAdminsDemotingEachOtherAtOnceLeaveOneAdmin(backend: StorageBackend) async throws {
        try await withStarted(OrganizationHarness.start(listening: false, backend: backend)) { harness in
            for _ in 0..<5 {
                let first = try await harness.user("first")
                let second = try await harness.user("second")
                let id = try await harness.organization(admin: first, members: [(second, .admin)])
                async let a = try? harness.call(
                    Organizations.changeMemberRole, MemberRequest(organizationId: id, userId: second.user.id, role: .member), as: first)
                async let b = try? harness.call(
                    Organizations.changeMemberRole, MemberRequest(organizationId: id, userId: first.user.id, role: .member), as: second)
                let outcomes = [await a, await b]
                #expect(outcomes.compactMap { $0 }.count == 1)
                let check = try await harness.service.call(Organizations.checkAdmin, MemberRef(organizationId: id, userId: first.user.id))
                let checkSecond = try await harness.service.call(Organizations.checkAdmin, MemberRef(organizationId: id, userId: second.user.id))
                #expect([check.isAdmin, checkSecond.isAdmin].filter { $0 }.count == 1)
            }
        }
    }

    @Test(arguments: StorageBackend.allCases) func retriedAndConcurrentCreatesWithOneKeyMakeOneOrganization(backend: StorageBackend) async throws {
        try await withStarted(OrganizationHarness.start(listening: false, backend: backend)) { harness in
            let user = try await harness.user("creator")
            let key = [(name: Organizations.idempotencyKeyHeader, value: "create-1")]
            let first = try await harness.call(Organizations.createOrganization, CreateOrganizationRequest(name: "Once"), as: user, headers: key)
            let retried = try await harness.call(Organizations.createOrganization, CreateOrganizationRequest(name: "Once"), as: user, headers: key)
            #expect(first == retried)
            let concurrentKey = [(name: Organizations.idempotencyKeyHeader, value: "create-2")]
            let ids = await withTaskGroup(of: String?.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        try? await harness.call(
                            Organizations.createOrganization, CreateOrganizationRequest(name: "Twice"), as: user, headers: concurrentKey
                        ).id
                    }
                }
                return await group.reduce(into: Set<String?>()) { $0.insert($1) }
            }
            #expect(ids.count == 1 && ids.first! != nil)
            #expect(try await harness.database.count("SELECT count(*) FROM organization") == 2)
            // Without a key, each create is a new organization.
            _ = try await harness.call(Organizations.createOrganization, CreateOrganizationRequest(name: "Once"), as: user)
            #expect(try await harness.call(Organizations.listMyOrganizations, Empty(), as: user).organizations.count == 3)
        }
    }

    @Test(arguments: StorageBackend.allCases) func aUserBelongsToAtMostTwentyFiveOrganizations(backend: StorageBackend) async throws {
        try await withStarted(OrganizationHarness.start(listening: false, backend: backend)) { harness in
            let user = try await harness.user("joiner")
            for index in 0..<25 {
                _ = try await harness.call(Organizations.createOrganization, CreateOrganizationRequest(name: "Org \(index)"), as: user)
            }
            await #expect(throws: RPCError(.resourceExhausted, "a user may belong to at most 25 organizations; leave one first")) {
                try await harness.call(Organizations.createOrganization, CreateOrganizationRequest(name: "One too many"), as: user)
            }
            // An invitation does not count: it can be made, but accepting it is refused at the limit.
            let other = try await harness.user("inviter")
            let id = try await harness.organization(admin: other)
            _ = try await harness.call(Organizations.addMember, MemberRequest(organizationId: id, userId: user.user.id, role: .member), as: other)
            await #expect(throws: RPCError(.resourceExhausted, "a user may belong to at most 25 organizations; leave one first")) {
                try await harness.call(Organizations.acceptInvitation, OrganizationRef(organizationId: id), as: user)
            }
        }
    }

    /// Nobody becomes a member without consent: AddMember invites; an invitation grants nothing
    /// (no role, no admin check), does not count against the invitee's limit, and is accepted or
    /// declined by the invitee alone.
    @Test(arguments: StorageBackend.allCases) func addingAUserInvitesThemAndOnlyTheyCanAccept(backend: StorageBackend) async throws {
        try await withStarted(OrganizationHarness.start(listening: false, backend: backend)) { harness in
            let attacker = try await harness.user("attacker")
            let victim = try await harness.user("victim")
            var organizations: [String] = []
            for index in 0..<25 {
                let id = try await harness.organization(admin: attacker, name: "Forced \(index)")
                _ = try await harness.call(
                    Organizations.addMember, MemberRequest(organizationId: id, userId: victim.user.id, role: .admin), as: attacker)
                organizations.append(id)
            }
            #expect(try await harness.call(Organizations.listMyOrganizations, Empty(), as: victim).organizations.isEmpty)
            let check = try await harness.service.call(Organizations.checkAdmin, MemberRef(organizationId: organizations[0], userId: victim.user.id))
            #expect(!check.isAdmin && check.role == nil)
            let invitations = try await harness.call(Organizations.listMyInvitations, Empty(), as: victim).invitations
            #expect(invitations.count == 25 && invitations.allSatisfy { $0.role == .admin && $0.invitedBy == attacker.user.id })
            // The victim's own organizations are not blocked by the invitations.
            _ = try await harness.call(Organizations.createOrganization, CreateOrganizationRequest(name: "Mine"), as: victim)
            // Only the invitee can accept; another user has no invitation to accept.
            let stranger = try await harness.user("stranger")
            await #expect(throws: RPCError(.notFound, "you have no invitation to this organization; ask one of its admins to invite you")) {
                try await harness.call(Organizations.acceptInvitation, OrganizationRef(organizationId: organizations[0]), as: stranger)
            }
            _ = try await harness.call(Organizations.declineInvitation, OrganizationRef(organizationId: organizations[0]), as: victim)
            await #expect(throws: RPCError(.notFound, "you have no invitation to this organization; ask one of its admins to invite you")) {
                try await harness.call(Organizations.acceptInvitation, OrganizationRef(organizationId: organizations[0]), as: victim)
            }
            let joined = try await harness.call(Organizations.acceptInvitation, OrganizationRef(organizationId: organizations[1]), as: victim)
            #expect(joined.role == .admin && joined.name == "Forced 1")
            // Accepting again (a retry whose answer was lost) gets the same membership and writes nothing.
            let rowsAfterJoining = try await harness.rowCounts()
            let again = try await harness.call(Organizations.acceptInvitation, OrganizationRef(organizationId: organizations[1]), as: victim)
            #expect(again.role == .admin && again.id == joined.id)
            let rowsAfterRetry = try await harness.rowCounts()
            #expect(rowsAfterRetry == rowsAfterJoining)
            #expect(try await harness.call(Organizations.listMyInvitations, Empty(), as: victim).invitations.count == 23)
            await #expect(throws: RPCError(.alreadyExists, "this user is already a member; use ChangeMemberRole to change their role")) {
                try await harness.call(
                    Organizations.addMember, MemberRequest(organizationId: organizations[1], userId: victim.user.id, role: .member), as: attacker)
            }
            // A user id identity does not know is refused, and nothing is written.
            let before = try await harness.rowCounts()
            await #expect(throws: RPCError(.notFound, "no user has this id: check it, or ask the person to register first")) {
                try await harness.call(
                    Organizations.addMember, MemberRequest(organizationId: organizations[1], userId: "no-such-user", role: .admin), as: attacker)
            }
            #expect(try await harness.rowCounts() == before)
        }
    }

    @Test(arguments: StorageBackend.allCases) func selectionIsRememberedAndForgottenOnLeaving(backend: StorageBackend) async throws {
        try await withStarted(OrganizationHarness.start(listening: false, backend: backend)) { harness in
            let admin = try await harness.user("admin")
            let member = try await harness.user("member")
            let id = try await harness.organization(admin: admin, members: [(member, .developer)])
            #expect(try await harness.call(Organizations.getSelectedOrganization, Empty(), as: member).organization == nil)
            let selected = try await harness.call(Organizations.selectOrganization, OrganizationRef(organizationId: id), as: member)
            #expect(selected.role == .developer && !selected.canLinkBilling)
            #expect(try await harness.call(Organizations.getSelectedOrganization, Empty(), as: member).organization?.id == id)
            _ = try await harness.call(Organizations.leaveOrganization, OrganizationRef(organizationId: id), as: member)
            #expect(try await harness.call(Organizations.getSelectedOrganization, Empty(), as: member).organization == nil)
            await #expect(throws: RPCError(.notFound, "no such organization, or you are not one of its members")) {
                try await harness.call(Organizations.getOrganization, OrganizationRef(organizationId: id), as: member)
            }
        }
    }

    @Test(arguments: StorageBackend.allCases) func billingIsSetOnceAndIdempotentlyAndClearedOnlyByItsLink(backend: StorageBackend) async throws {
        try await withStarted(OrganizationHarness.start(listening: false, backend: backend)) { harness in
            let admin = try await harness.user("admin")
            let billing = try await harness.user("billing")
            let id = try await harness.organization(admin: admin, members: [(billing, .billing)])
            let other = try await harness.organization(admin: admin, name: "Other")
            let set = SetBillingAccountRequest(
                organizationId: id, provider: .awsMarketplace, awsAccountId: "123456789012", linkId: "link-1",
                contract: OrganizationHarness.contract(), linkedBy: admin.user.id)
            let results = await withTaskGroup(of: BillingAccount?.self) { group in
                for _ in 0..<6 { group.addTask { try? await harness.service.call(Organizations.setBillingAccount, set) } }
                return await group.reduce(into: [BillingAccount?]()) { $0.append($1) }
            }
            #expect(results.allSatisfy { $0?.provider == .awsMarketplace && $0?.linkId == "link-1" })
            #expect(try await harness.database.count("SELECT count(*) FROM billing_account") == 1)
            #expect(
                try await harness.database.count("SELECT count(*) FROM audit_event WHERE action = 'billing_set'")
                    == 1)

            // The same link with a new contract (entitlements changed): replaced, once.
            var amended = set
            amended.contract.dimensions["seats"] = "99"
            for _ in 0..<2 {
                #expect(try await harness.service.call(Organizations.setBillingAccount, amended).contract?.dimensions["seats"] == "99")
            }
            #expect(
                try await harness.database.count("SELECT count(*) FROM audit_event WHERE action = 'billing_updated'")
                    == 1)

            var another = set
            another.linkId = "link-2"
            await #expect(throws: RPCError(.failedPrecondition, "this organization is already billed through another AWS Marketplace contract")) {
                try await harness.service.call(Organizations.setBillingAccount, another)
            }
            var elsewhere = set
            elsewhere.organizationId = other
            await #expect(throws: RPCError(.failedPrecondition, "this marketplace link already bills another organization")) {
                try await harness.service.call(Organizations.setBillingAccount, elsewhere)
            }
            let seen = try await harness.call(Organizations.getBillingAccount, OrganizationRef(organizationId: id), as: billing)
            #expect(
                seen.provider == .awsMarketplace && seen.awsAccountId == "********9012" && seen.contract?.dimensions == amended.contract.dimensions,
                "a user sees the AWS account masked")

            // Another link cannot clear it; its own link can, and clearing again changes nothing.
            #expect(
                try await harness.service.call(
                    Organizations.clearBillingAccount, ClearBillingAccountRequest(organizationId: id, linkId: "link-2", reason: "x")
                ).provider == .awsMarketplace)
            #expect(
                try await harness.service.call(
                    Organizations.clearBillingAccount, ClearBillingAccountRequest(organizationId: id, linkId: "link-1", reason: "unsubscribed")
                ).provider == .none)
            #expect(
                try await harness.service.call(
                    Organizations.clearBillingAccount, ClearBillingAccountRequest(organizationId: id, linkId: "link-1", reason: "unsubscribed")
                ).provider == .none)
            let actions = try await harness.call(Organizations.listAuditEvents, OrganizationRef(organizationId: id), as: admin).events
            #expect(actions.first?.action == "billing_cleared" && actions.first?.actor == "service:marketplace-link")
        }
    }

    @Test(arguments: StorageBackend.allCases) func badInputIsRefusedWithInvalidArgumentAndWritesNothing(backend: StorageBackend) async throws {
        try await withStarted(OrganizationHarness.start(backend: backend)) { harness in
            let admin = try await harness.user("admin")
            let id = try await harness.organization(admin: admin)
            let before = try await harness.rowCounts()
            let base = "http://127.0.0.1:\(harness.port)/organization.v1.OrganizationService/"
            let cases: [(method: String, body: String, mentions: String)] = [
                ("CreateOrganization", #"{"name":"A"}"#, "2 to 64"),
                ("CreateOrganization", #"{"name":"   "}"#, "2 to 64"),
                ("CreateOrganization", #"{"name":"\#(String(repeating: "n", count: 65))"}"#, "2 to 64"),
                ("CreateOrganization", #"{"name":"Bad\u0000Name"}"#, "control characters"),
                ("CreateOrganization", #"{}"#, "'name' is required"),
                ("CreateOrganization", #"{"name":42}"#, "expected a string"),
                ("AddMember", #"{"organizationId":"\#(id)","userId":"x","role":"OWNER"}"#, "role"),
                ("AddMember", #"{"organizationId":"\#(id)","userId":"NOT VALID","role":"MEMBER"}"#, "userId is not a valid id"),
                ("AddMember", #"{"organizationId":"","userId":"x","role":"MEMBER"}"#, "organizationId is required"),
                ("ChangeMemberRole", #"{"organizationId":"\#(id)","userId":"x"}"#, "'role' is required")
            ]
            for (method, body, mentions) in cases {
                let response = try await Curl.post(
                    base + method, body: body,
                    extra: ["--http2-prior-knowledge", "-H", "authorization: Bearer \(admin.accessToken)"])
                #expect(
                    response.status == 400 && response.body.contains("invalid_argument") && response.body.contains(mentions),
                    "\(method) \(body) -> \(response.body)")
            }
            let idempotency = try await Curl.post(
                base + "CreateOrganization", body: #"{"name":"Fine"}"#,
                extra: [
                    "--http2-prior-knowledge", "-H", "authorization: Bearer \(admin.accessToken)", "-H",
                    "idempotency-key: \(String(repeating: "k", count: 200))"
                ])
            #expect(idempotency.status == 400 && idempotency.body.contains("idempotency-key"))
            for bad in [(account: "12345", link: "l"), (account: "123456789012", link: "")] {
                await #expect(throws: RPCError.self) {
                    try await harness.service.call(
                        Organizations.setBillingAccount,
                        SetBillingAccountRequest(
                            organizationId: id, provider: .awsMarketplace, awsAccountId: bad.account, linkId: bad.link,
                            contract: OrganizationHarness.contract()))
                }
            }
            #expect(try await harness.rowCounts() == before)
        }
    }
}
