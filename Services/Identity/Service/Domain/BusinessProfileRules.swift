import Contracts
import Foundation
import RPCCore

/// Checks and tidies the business profile a user gives after their first sign-in.
enum BusinessProfileRules {
    static func validated(_ profile: BusinessProfile) throws(IdentityError) -> BusinessProfile {
        var tidy = profile
        tidy.companyName = try text(profile.companyName, field: "companyName", maximum: 200)
        tidy.jobTitle = try text(profile.jobTitle, field: "jobTitle", maximum: 100)
        tidy.useCase = try text(profile.useCase, field: "useCase", maximum: 2000, allowingLineBreaks: true)
        guard BusinessProfile.companySizes.contains(profile.companySize) else {
            throw .invalid(field: "companySize", reason: "must be one of \(BusinessProfile.companySizes.joined(separator: ", "))")
        }
        let country = profile.country.trimmingCharacters(in: .whitespaces).uppercased()
        guard CountryCodes.all.contains(country) else {
            throw .invalid(field: "country", reason: "must be an ISO 3166-1 alpha-2 country code such as DE or US")
        }
        tidy.country = country
        return tidy
    }

    /// Trimmed, non-empty, at most `maximum` characters, no control characters (line breaks only where allowed).
    static func text(_ value: String, field: String, maximum: Int, allowingLineBreaks: Bool = false) throws(IdentityError) -> String {
        guard value.utf8.count <= maximum * 8 else { throw .invalid(field: field, reason: "must be at most \(maximum) characters long") }
        let trimmed = value.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw .invalid(field: field, reason: "is required") }
        guard TextLength.isAtMost(trimmed, characters: maximum) else {
            throw .invalid(field: field, reason: "must be at most \(maximum) characters long")
        }
        guard !trimmed.unicodeScalars.contains(where: { $0.properties.generalCategory == .control && !(allowingLineBreaks && $0 == "\n") }) else {
            throw .invalid(field: field, reason: "must not contain control characters")
        }
        return trimmed
    }
}
