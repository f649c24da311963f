import Foundation
import TestSupport
import XCTest

/// Documents checked against a JSON Schema with Python's `jsonschema` (Debian: python3-jsonschema;
/// the project has no Swift JSON Schema validator): our report schemas (draft 2020-12) and NIST's
/// OSCAL schemas (draft 7, through scripts/validate-oscal.py, which also needs python3-regex).
enum SchemaValidation {
    /// For each instance file after the schema, one line: its errors as a JSON array (empty: valid).
    /// Exit status 3 when jsonschema is missing. Works with jsonschema 4.10 (Debian 12) and later.
    static let reportValidator = """
        import json, sys
        try:
            import jsonschema
        except ImportError:
            sys.exit(3)
        schema = json.load(open(sys.argv[1]))
        jsonschema.Draft202012Validator.check_schema(schema)
        validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
        for path in sys.argv[2:]:
            errors = sorted(validator.iter_errors(json.load(open(path))), key=lambda error: list(error.absolute_path))
            print(json.dumps(["/" + "/".join(map(str, error.absolute_path)) + ": " + error.message for error in errors]))
        """

    static func schema(_ relative: String) -> URL { TestEnvironment.packageRoot.appendingPathComponent(relative) }

    /// The errors of each document against one of our report schemas (empty: valid), in one run.
    static func reportErrors(_ documents: [Data], schema: URL) throws -> [[String]] {
        try withFiles(documents) { directory, paths in
            let process = try ChildProcess("/usr/bin/env", ["python3", "-c", reportValidator, schema.path] + paths,
                                           output: directory.appendingPathComponent("output"))
            let status = try XCTUnwrap(process.wait(timeout: 60), "the validator did not finish")
            if status == 127 { try missing("python3 is not on PATH") }
            if status == 3 { try missing("Python's jsonschema is not installed (apt-get install python3-jsonschema)") }
            XCTAssertEqual(status, 0, process.output)
            let lines = process.output.split(separator: "\n").filter { $0.hasPrefix("[") }
            XCTAssertEqual(lines.count, documents.count, process.output)
            return try lines.map { try JSONDecoder().decode([String].self, from: Data($0.utf8)) }
        }
    }

    /// The validator's output for an OSCAL document against a NIST schema; empty when valid.
    static func oscalErrors(_ document: Data, schema: URL) throws -> String {
        try withFiles([document]) { directory, paths in
            // Debian's python3 (its python3-jsonschema, python3-regex and python3-rfc3987), not a
            // developer's pyenv whose jsonschema may skip URI formats.
            let python = FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") ? "/usr/bin/python3" : "/usr/bin/env"
            let script = TestEnvironment.packageRoot.appendingPathComponent("scripts/validate-oscal.py").path
            let arguments = (python == "/usr/bin/env" ? ["python3"] : []) + [script, schema.path, paths[0]]
            let process = try ChildProcess(python, arguments, output: directory.appendingPathComponent("output"))
            let status = try XCTUnwrap(process.wait(timeout: 120), "the validator did not finish")
            if status != 0, process.output.contains("ModuleNotFoundError") {
                try missing("the OSCAL validator needs Debian's python3-jsonschema and python3-regex: \(process.output)")
            }
            return status == 0 ? "" : process.output
        }
    }

    private static func withFiles<T>(_ documents: [Data], _ body: (URL, [String]) throws -> T) throws -> T {
        let directory = try TestEnvironment.temporaryDirectory("schema")
        defer { try? FileManager.default.removeItem(at: directory) }
        let paths = try documents.enumerated().map { index, json in
            let path = directory.appendingPathComponent("document-\(index).json")
            try json.write(to: path)
            return path.path
        }
        return try body(directory, paths)
    }

    /// CI runs as root: there a missing validator fails the test; elsewhere it skips with the reason.
    static func missing(_ reason: String) throws -> Never {
        if getuid() == 0 {
            XCTFail("required when running as root (CI): \(reason)")
            throw XCTSkip("failed above: \(reason)")
        }
        try TestEnvironment.missing(reason)
    }
}
