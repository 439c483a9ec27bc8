import Foundation
import RPCCore

/// `identity.v1.IdentityService` (proto/identity/v1/identity.proto): users, email verification,
/// sessions, the business profile, and the keys every other service verifies access tokens with.
public enum Identity {
    static let service = "identity.v1.IdentityService"

    public static let register = RPCMethod<RegisterRequest, AcknowledgedResponse>(service: service, name: "Register")
    public static let verifyEmail = RPCMethod<VerifyEmailRequest, VerifyEmailResponse>(service: service, name: "VerifyEmail")
    public static let resendVerification = RPCMethod<ResendVerificationRequest, AcknowledgedResponse>(service: service, name: "ResendVerification")
    public static let login = RPCMethod<LoginRequest, LoginResponse>(service: service, name: "Login")
    public static let refreshAccessToken = RPCMethod<SessionTokenRequest, AccessTokenResponse>(service: service, name: "RefreshAccessToken")
    public static let logout = RPCMethod<SessionTokenRequest, Empty>(service: service, name: "Logout")
    /// Needs the access token.
    public static let logoutAll = RPCMethod<Empty, LogoutAllResponse>(service: service, name: "LogoutAll")
    /// Needs the access token.
    public static let getMe = RPCMethod<Empty, User>(service: service, name: "GetMe")
    /// Needs the access token.
    public static let updateBusinessProfile = RPCMethod<BusinessProfile, User>(service: service, name: "UpdateBusinessProfile")
    /// Needs the access token.
    public static let changePassword = RPCMethod<ChangePasswordRequest, Empty>(service: service, name: "ChangePassword")
    public static let requestPasswordReset = RPCMethod<RequestPasswordResetRequest, AcknowledgedResponse>(
        service: service, name: "RequestPasswordReset")
    public static let resetPassword = RPCMethod<ResetPasswordRequest, Empty>(service: service, name: "ResetPassword")
    public static let getSigningKeys = RPCMethod<Empty, JSONWebKeySet>(service: service, name: "GetSigningKeys")
    public static let introspectSession = RPCMethod<SessionTokenRequest, IntrospectSessionResponse>(
        service: service, name: "IntrospectSession",
        access: .internalOnly(callers: [ServiceNames.console, ServiceNames.organization, ServiceNames.marketplaceLink]))
    /// The users among `userIds` and `emails` that exist (at most 100 of each): for organization's
    /// invitations and the console's member pages. Never for end users.
    public static let lookupUsers = RPCMethod<LookupUsersRequest, UserDirectory>(
        service: service, name: "LookupUsers", access: .internalOnly(callers: [ServiceNames.organization, ServiceNames.console]))
}

public struct LookupUsersRequest: RPCMessage, Equatable {
    public var userIds: [String]
    /// Compared as identity compares addresses (case-insensitively).
    public var emails: [String]
    public init(userIds: [String] = [], emails: [String] = []) {
        self.userIds = userIds
        self.emails = emails
    }

    enum CodingKeys: String, CodingKey { case userIds, emails }

    /// proto3: an absent repeated field is empty.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        userIds = try container.decodeIfPresent([String].self, forKey: .userIds) ?? []
        emails = try container.decodeIfPresent([String].self, forKey: .emails) ?? []
    }
}

/// A user as other services may show them to the user's organizations.
public struct UserSummary: RPCMessage, Equatable {
    public var id: String
    public var email: String
    public var fullName: String
    public var emailVerified: Bool
    public init(id: String, email: String, fullName: String, emailVerified: Bool) {
        self.id = id
        self.email = email
        self.fullName = fullName
        self.emailVerified = emailVerified
    }
}

public struct UserDirectory: RPCMessage, Equatable {
    public var users: [UserSummary]
    public init(users: [UserSummary]) { self.users = users }
}

/// `google.protobuf.Empty`.
public struct Empty: RPCMessage, Equatable {
    public init() {}
}

/// The same answer whatever the input, so that it tells nothing about which accounts exist.
public struct AcknowledgedResponse: RPCMessage, Equatable {
    public var message: String
    public init(message: String) { self.message = message }
}

public struct RegisterRequest: RPCMessage, Equatable {
    public var email: String
    public var password: String
    public var fullName: String
    public init(email: String, password: String, fullName: String) {
        self.email = email
        self.password = password
        self.fullName = fullName
    }
}

public struct VerifyEmailRequest: RPCMessage, Equatable {
    /// The token from the link in the verification email.
    public var token: String
    /// The password to finish with. Required when the link came from ResendVerification (whoever
    /// set the account's password may not own the mailbox); optional for a link sent at
    /// registration, which sets the password chosen in that registration.
    public var newPassword: String?
    public init(token: String, newPassword: String? = nil) {
        self.token = token
        self.newPassword = newPassword
    }
}

public struct VerifyEmailResponse: RPCMessage, Equatable {
    public var email: String
    public init(email: String) { self.email = email }
}

public struct ResendVerificationRequest: RPCMessage, Equatable {
    public var email: String
    public init(email: String) { self.email = email }
}

public struct LoginRequest: RPCMessage, Equatable {
    public var email: String
    public var password: String
    public init(email: String, password: String) {
        self.email = email
        self.password = password
    }
}

public struct LoginResponse: RPCMessage, Equatable {
    /// Opaque; exchanged for new access tokens with RefreshAccessToken. Keep it secret.
    public var sessionToken: String
    public var sessionExpiresAt: Date
    public var accessToken: String
    public var accessTokenExpiresAt: Date
    public var user: User
    public init(sessionToken: String, sessionExpiresAt: Date, accessToken: String, accessTokenExpiresAt: Date, user: User) {
        self.sessionToken = sessionToken
        self.sessionExpiresAt = sessionExpiresAt
        self.accessToken = accessToken
        self.accessTokenExpiresAt = accessTokenExpiresAt
        self.user = user
    }
}

public struct SessionTokenRequest: RPCMessage, Equatable {
    public var sessionToken: String
    public init(sessionToken: String) { self.sessionToken = sessionToken }
}

public struct AccessTokenResponse: RPCMessage, Equatable {
    public var accessToken: String
    public var accessTokenExpiresAt: Date
    public init(accessToken: String, accessTokenExpiresAt: Date) {
        self.accessToken = accessToken
        self.accessTokenExpiresAt = accessTokenExpiresAt
    }
}

public struct LogoutAllResponse: RPCMessage, Equatable {
    public var revokedSessions: Int
    public init(revokedSessions: Int) { self.revokedSessions = revokedSessions }
}

/// Where a user is in onboarding.
public enum OnboardingState: String, Codable, Sendable {
    case needsBusinessProfile = "NEEDS_BUSINESS_PROFILE"
    case complete = "COMPLETE"
}

/// A signed-in user as they see themselves.
public struct User: RPCMessage, Equatable {
    public var id: String
    public var email: String
    public var fullName: String
    public var emailVerified: Bool
    public var onboardingState: OnboardingState
    public var businessProfile: BusinessProfile?
    public var createdAt: Date
    public init(
        id: String, email: String, fullName: String, emailVerified: Bool, onboardingState: OnboardingState,
        businessProfile: BusinessProfile?, createdAt: Date
    ) {
        self.id = id
        self.email = email
        self.fullName = fullName
        self.emailVerified = emailVerified
        self.onboardingState = onboardingState
        self.businessProfile = businessProfile
        self.createdAt = createdAt
    }
}

/// Basic business information, asked for once after the first sign-in; also UpdateBusinessProfile's request.
public struct BusinessProfile: RPCMessage, Equatable {
    public var companyName: String
    /// One of `BusinessProfile.companySizes`.
    public var companySize: String
    /// ISO 3166-1 alpha-2, e.g. `DE`.
    public var country: String
    public var jobTitle: String
    public var useCase: String

    /// The accepted company sizes, as proto enum value names.
    public static let companySizes = [
        "COMPANY_SIZE_1_TO_10", "COMPANY_SIZE_11_TO_50", "COMPANY_SIZE_51_TO_200",
        "COMPANY_SIZE_201_TO_1000", "COMPANY_SIZE_1001_TO_5000", "COMPANY_SIZE_OVER_5000"
    ]

    public init(companyName: String, companySize: String, country: String, jobTitle: String, useCase: String) {
        self.companyName = companyName
        self.companySize = companySize
        self.country = country
        self.jobTitle = jobTitle
        self.useCase = useCase
    }
}

public struct ChangePasswordRequest: RPCMessage, Equatable {
    public var oldPassword: String
    public var newPassword: String
    public init(oldPassword: String, newPassword: String) {
        self.oldPassword = oldPassword
        self.newPassword = newPassword
    }
}

public struct RequestPasswordResetRequest: RPCMessage, Equatable {
    public var email: String
    public init(email: String) { self.email = email }
}

public struct ResetPasswordRequest: RPCMessage, Equatable {
    /// The token from the link in the reset email.
    public var token: String
    public var newPassword: String
    public init(token: String, newPassword: String) {
        self.token = token
        self.newPassword = newPassword
    }
}

/// A public key in JWK form (RFC 7517): an EC P-256 key for ES256 signatures.
public struct JSONWebKey: RPCMessage, Equatable {
    public var kty: String
    public var crv: String
    /// Base64url, 32 bytes each.
    public var x: String
    public var y: String
    public var kid: String
    public var use: String
    public var alg: String
    public init(kty: String = "EC", crv: String = "P-256", x: String, y: String, kid: String, use: String = "sig", alg: String = "ES256") {
        self.kty = kty
        self.crv = crv
        self.x = x
        self.y = y
        self.kid = kid
        self.use = use
        self.alg = alg
    }
}

/// The keys access tokens may be signed with: the current one and retired ones whose tokens may still be live.
public struct JSONWebKeySet: RPCMessage, Equatable {
    public var keys: [JSONWebKey]
    public init(keys: [JSONWebKey]) { self.keys = keys }
}

public struct IntrospectSessionResponse: RPCMessage, Equatable {
    /// False for an unknown, expired, idle-expired or revoked session; the other fields are then empty.
    public var active: Bool
    public var userId: String?
    public var email: String?
    public var emailVerified: Bool?
    public var expiresAt: Date?
    public init(active: Bool, userId: String? = nil, email: String? = nil, emailVerified: Bool? = nil, expiresAt: Date? = nil) {
        self.active = active
        self.userId = userId
        self.email = email
        self.emailVerified = emailVerified
        self.expiresAt = expiresAt
    }
}
