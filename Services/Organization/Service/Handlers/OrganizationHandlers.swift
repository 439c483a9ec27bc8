import ConnectTransport
import Contracts
import RPCCore
import ServiceRuntime

/// Binds `organization.v1.OrganizationService` to the use cases, and their records to the
/// messages (`OrganizationMessages`). Public methods authenticate the
/// user by access token; internal-only ones are guarded by the router and name the calling service.
struct OrganizationHandlers {
    let directory: OrganizationDirectory
    let authenticator: AccessTokenAuthenticator

    func register(in router: inout RPCRouter) {
        let directory = directory
        let authenticator = authenticator
        let user = { @Sendable (context: CallContext) async throws(RPCError) -> String in
            try await authenticator.authenticate(context.bearerToken).subject
        }
        router.register(Organizations.createOrganization) { request, context in
            try await directory.create(request, userID: try await user(context), idempotencyKey: context.header(Organizations.idempotencyKeyHeader))
                .message
        }
        router.register(Organizations.listMyOrganizations) { _, context in
            OrganizationList(organizations: try await directory.list(userID: try await user(context)).map(\.message))
        }
        router.register(Organizations.getOrganization) { request, context in
            TraceContext.annotate(organizationID: request.organizationId)
            return try await directory.get(request, userID: try await user(context)).message
        }
        router.register(Organizations.selectOrganization) { request, context in
            try await directory.select(request, userID: try await user(context)).message
        }
        router.register(Organizations.getSelectedOrganization) { _, context in
            SelectedOrganization(organization: try await directory.selected(userID: try await user(context))?.message)
        }
        router.register(Organizations.addMember) { request, context in
            try await directory.addMember(request, actor: try await user(context)).message
        }
        router.register(Organizations.listMyInvitations) { _, context in
            InvitationList(invitations: try await directory.invitations(userID: try await user(context)).map(\.message))
        }
        router.register(Organizations.acceptInvitation) { request, context in
            try await directory.acceptInvitation(request, userID: try await user(context)).message
        }
        router.register(Organizations.declineInvitation) { request, context in
            try await directory.declineInvitation(request, userID: try await user(context))
            return Empty()
        }
        router.register(Organizations.changeMemberRole) { request, context in
            try await directory.changeRole(request, actor: try await user(context)).message
        }
        router.register(Organizations.removeMember) { request, context in
            try await directory.removeMember(request, actor: try await user(context))
            return Empty()
        }
        router.register(Organizations.leaveOrganization) { request, context in
            try await directory.leave(request, userID: try await user(context))
            return Empty()
        }
        router.register(Organizations.listMembers) { request, context in
            MemberList(members: try await directory.members(request, userID: try await user(context)).map(\.message))
        }
        router.register(Organizations.checkAdmin) { request, _ in
            TraceContext.annotate(organizationID: request.organizationId)
            return CheckAdminResponse(role: try await directory.checkAdmin(request))
        }
        router.register(Organizations.getBillingAccount) { request, context in
            TraceContext.annotate(organizationID: request.organizationId)
            return try await directory.billing(request, userID: try await user(context)).message
        }
        router.register(Organizations.setBillingAccount) { request, context in
            TraceContext.annotate(organizationID: request.organizationId)
            return try await directory.setBilling(request, service: context.callingService ?? "unknown").message
        }
        router.register(Organizations.clearBillingAccount) { request, context in
            TraceContext.annotate(organizationID: request.organizationId)
            return try await directory.clearBilling(request, service: context.callingService ?? "unknown").message
        }
        router.register(Organizations.listAuditEvents) { request, context in
            AuditEventList(events: try await directory.auditEvents(request, userID: try await user(context)).map(\.message))
        }
    }
}
