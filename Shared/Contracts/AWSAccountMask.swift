/// How a 12-digit AWS account id is shown to users: all but the last four digits hidden, also
/// where the id sits inside an ARN (`arn:aws:license-manager::********1111:license:...`). Services
/// keep the whole id for AWS and for each other; what a user receives goes through here.
public enum AWSAccountMask {
    /// `111122223333` as `********3333`.
    public static func account(_ id: String) -> String {
        String(repeating: "*", count: max(0, id.count - 4)) + id.suffix(4)
    }

    /// Every run of exactly 12 digits in `text` masked (an ARN's account field); the rest kept.
    public static func arn(_ text: String) -> String {
        var result = ""
        var digits = ""
        func flush() {
            result += digits.count == 12 ? account(digits) : digits
            digits = ""
        }
        for character in text {
            if character.isASCII && character.isNumber {
                digits.append(character)
            } else {
                flush()
                result.append(character)
            }
        }
        flush()
        return result
    }
}
