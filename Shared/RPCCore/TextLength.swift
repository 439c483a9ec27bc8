/// Length checks on text a client sent, in characters as a person counts them, without letting a
/// huge string cost event-loop time: counting grapheme clusters walks every byte, and a megabyte of
/// combining marks makes a few hundred "characters". The byte length is checked first (a character
/// of ordinary text takes at most 4 UTF-8 bytes), so no count ever walks more than 4 x `maximum` bytes.
public enum TextLength {
    /// Whether `text` has at most `maximum` characters and at most 4 bytes per allowed character.
    public static func isAtMost(_ text: some StringProtocol, characters maximum: Int) -> Bool {
        text.utf8.count <= maximum * 4 && text.count <= maximum
    }

    /// Whether `text` has `range` characters (and at most 4 bytes per character of the upper bound).
    public static func isWithin(_ text: some StringProtocol, characters range: ClosedRange<Int>) -> Bool {
        text.utf8.count <= range.upperBound * 4 && range.contains(text.count)
    }
}
