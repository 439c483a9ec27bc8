import Foundation
import ServiceRuntime
import Testing

@Suite struct MaildropTests {
    @Test func writesWholeRFC5322FilesNamedByMessage() throws {
        let directory = NSTemporaryDirectory() + "maildrop-\(UUID().uuidString)"
        let maildrop = Maildrop(directory: directory, domain: "identity.local")
        let message = EmailMessage(
            from: "Sender <noreply@example.com>", to: "<user@example.com>", subject: "Verify your email",
            body: "Hello,\nclick the link.\n", id: "m-1")
        let path = try maildrop.deliver(message)
        #expect(path == directory + "/m-1.eml")
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.hasPrefix("From: Sender <noreply@example.com>\r\nTo: <user@example.com>\r\nSubject: Verify your email\r\n"))
        #expect(text.contains("Message-ID: <m-1@identity.local>\r\n"))
        #expect(text.contains("\r\n\r\nHello,\r\nclick the link.\r\n"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["m-1.eml"])  // no temporary left
    }
}
