import Contracts
import Foundation

/// What an access token says about its bearer. Identity signs it (ES256, a JWT); other services
/// verify it locally with identity's published keys and trust it until `expiresAt`.
public struct AccessTokenClaims: Codable, Sendable, Equatable {
    /// Always `AccessTokenClaims.issuer`.
    public var issuer: String
    /// The user's id.
    public var subject: String
    public var email: String
    public var emailVerified: Bool
    public var onboardingState: OnboardingState
    /// The session the token was issued from.
    public var sessionID: String
    public var issuedAt: Date
    public var expiresAt: Date

    /// The `iss` every access token carries.
    public static let issuer = "marketplace-onboarding/identity"

    public init(
        subject: String, email: String, emailVerified: Bool, onboardingState: OnboardingState,
        sessionID: String, issuedAt: Date, expiresAt: Date
    ) {
        self.issuer = Self.issuer
        self.subject = subject
        self.email = email
        self.emailVerified = emailVerified
        self.onboardingState = onboardingState
        self.sessionID = sessionID
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
    }

    /// Registered JWT claim names (RFC 7519 section 4.1), seconds since 1970 for times.
    private enum CodingKeys: String, CodingKey {
        case issuer = "iss", subject = "sub", email, emailVerified = "email_verified"
        case onboardingState = "onboarding_state", sessionID = "sid", issuedAt = "iat", expiresAt = "exp"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        issuer = try container.decode(String.self, forKey: .issuer)
        subject = try container.decode(String.self, forKey: .subject)
        email = try container.decode(String.self, forKey: .email)
        emailVerified = try container.decode(Bool.self, forKey: .emailVerified)
        onboardingState = try container.decode(OnboardingState.self, forKey: .onboardingState)
        sessionID = try container.decode(String.self, forKey: .sessionID)
        issuedAt = Date(timeIntervalSince1970: try container.decode(Double.self, forKey: .issuedAt))
        expiresAt = Date(timeIntervalSince1970: try container.decode(Double.self, forKey: .expiresAt))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(issuer, forKey: .issuer)
        try container.encode(subject, forKey: .subject)
        try container.encode(email, forKey: .email)
        try container.encode(emailVerified, forKey: .emailVerified)
        try container.encode(onboardingState, forKey: .onboardingState)
        try container.encode(sessionID, forKey: .sessionID)
        try container.encode(Int64(issuedAt.timeIntervalSince1970.rounded(.down)), forKey: .issuedAt)
        try container.encode(Int64(expiresAt.timeIntervalSince1970.rounded(.down)), forKey: .expiresAt)
    }
}
