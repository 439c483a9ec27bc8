import RPCCore

/// What organization refuses, in its own words; `rpcError` is the one place these become Connect codes.
enum OrganizationError: RPCErrorConvertible, Equatable {
    case invalid(field: String, reason: String)
    /// Unknown organization, or the caller is not a member: one answer, so existence does not leak.
    case notFound
    case roleRequired([String])
    case tooManyOrganizations(limit: Int)
    case lastAdmin
    case alreadyMember
    case notMember
    case noInvitation
    case unknownUser
    case identityUnavailable
    case billedThroughAnotherLink
    case linkBindsAnotherOrganization

    var rpcError: RPCError {
        switch self {
        case .invalid(let field, let reason):
            RPCError(.invalidArgument, "\(field) \(reason)")
        case .notFound:
            RPCError(.notFound, "no such organization, or you are not one of its members")
        case .roleRequired(let roles):
            RPCError(.permissionDenied, "only \(roles.joined(separator: " or ")) members of this organization may do this; ask one of its admins")
        case .tooManyOrganizations(let limit):
            RPCError(.resourceExhausted, "a user may belong to at most \(limit) organizations; leave one first")
        case .lastAdmin:
            RPCError(.failedPrecondition, "an organization needs at least one admin: make another member ADMIN first")
        case .alreadyMember:
            RPCError(.alreadyExists, "this user is already a member; use ChangeMemberRole to change their role")
        case .unknownUser:
            RPCError(.notFound, "no user has this id: check it, or ask the person to register first")
        case .identityUnavailable:
            RPCError(.unavailable, "cannot check the user with identity now; try again shortly")
        case .noInvitation:
            RPCError(.notFound, "you have no invitation to this organization; ask one of its admins to invite you")
        case .notMember:
            RPCError(.notFound, "this user is not a member of the organization")
        case .billedThroughAnotherLink:
            RPCError(.failedPrecondition, "this organization is already billed through another AWS Marketplace contract")
        case .linkBindsAnotherOrganization:
            RPCError(.failedPrecondition, "this marketplace link already bills another organization")
        }
    }
}
