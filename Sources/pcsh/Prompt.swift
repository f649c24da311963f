import Foundation

/// Questions to the person at the keyboard: from the terminal without echo for secrets; from
/// standard input, one line each, when it is not a terminal (scripts, tests).
enum Prompt {
    static func line(_ question: String) throws -> String {
        // What was printed before the question must be seen before it (stdout to a pipe is buffered).
        fflush(nil)
        FileHandle.standardError.write(Data(question.utf8))
        guard let answer = readLine(strippingNewline: true) else { throw PcshError("no answer to '\(question.trimmingCharacters(in: .whitespaces))' (standard input ended)") }
        return answer
    }

    static func secret(_ question: String) throws -> String {
        guard isatty(STDIN_FILENO) == 1 else { return try line(question) }
        var saved = termios()
        tcgetattr(STDIN_FILENO, &saved)
        var quiet = saved
        quiet.c_lflag &= ~tcflag_t(ECHO)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet)
        defer {
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved)
            FileHandle.standardError.write(Data("\n".utf8))
        }
        return try line(question)
    }
}
