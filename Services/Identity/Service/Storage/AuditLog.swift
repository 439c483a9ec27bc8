import Foundation
import GRDB

/// Security events, written in the same transaction as what they record.
enum AuditEvent: String, Sendable {
    case registered, registerForExistingEmail = "register_existing_email", verified
    case loginSucceeded = "login_succeeded", loginFailed = "login_failed", locked, loginRefusedLocked = "login_refused_locked"
    case logout, logoutAll = "logout_all", passwordChanged = "password_changed", passwordChangeFailed = "password_change_failed"
    case passwordResetRequested = "password_reset_requested", passwordReset = "password_reset"
    case profileUpdated = "profile_updated"
}

enum AuditLog {
    static func record(
        _ db: Database, _ event: AuditEvent, at: Date, userID: String? = nil, email: String? = nil,
        clientIP: String? = nil, detail: String? = nil
    ) throws {
        try db.execute(
            sql: """
                INSERT INTO audit_event (at, event, user_id, email, client_ip, detail) VALUES (?, ?, ?, ?, ?, ?)
                """, arguments: [at.timeIntervalSince1970, event.rawValue, userID, email, clientIP, detail])
    }
}
