import Foundation

/// The terminal component, from Debian's xterm.js package (`node-xterm`, which depends on
/// `libjs-xterm`): Debian 12's `libjs-xterm` ships only a CommonJS stub (its `xterm.js` is
/// `require("./public/Terminal")`), and the modules themselves are in `node-xterm`'s `lib/`.
/// (Its addons are `libjs-xterm`'s, linked there.) A browser cannot `require`, so the daemon
/// joins those modules once into one script with a
/// small loader of its own — the package's code as Debian ships it, served from the appliance
/// (no CDN, no bundled copy in our package; Debian policy prefers the dependency).
enum XtermBundle {
    static let defaultDirectory = "/usr/share/nodejs/xterm/lib"

    enum Failure: Error, CustomStringConvertible {
        case missing(String)
        case tooLarge(String)

        var description: String {
            switch self {
            case .missing(let directory):
                "the terminal component is not installed (no xterm.js modules in \(directory)); install Debian's node-xterm package"
            case .tooLarge(let directory): "\(directory) holds more than the 8 MiB the terminal component can be"
            }
        }
    }

    /// The script (`window.Terminal`, with the fit addon applied) and the stylesheet.
    static func build(from directory: String = defaultDirectory) throws -> (script: String, stylesheet: String) {
        guard let walker = FileManager.default.enumerator(atPath: directory) else { throw Failure.missing(directory) }
        var paths: [String] = []
        while let path = walker.nextObject() as? String {
            // Tests and the addons stay out (addons/ is libjs-xterm's, linked, and not walked).
            guard path.hasSuffix(".js"), !path.hasSuffix(".test.js"), !path.hasPrefix("addons/") else { continue }
            paths.append(path)
        }
        // The one addon the console uses.
        if FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent("addons/fit/fit.js")) { paths.append("addons/fit/fit.js") }
        var modules: [(String, String)] = []
        var total = 0
        for path in paths {
            let text = try String(contentsOfFile: (directory as NSString).appendingPathComponent(path), encoding: .utf8)
            total += text.utf8.count
            guard total <= 8 << 20 else { throw Failure.tooLarge(directory) }
            // Source-map comments would have a browser's tools ask for files the console does not serve.
            let code = text.split(separator: "\n", omittingEmptySubsequences: false)
                .filter { !$0.hasPrefix("//# sourceMappingURL=") }.joined(separator: "\n")
            modules.append((path, code))
        }
        guard modules.contains(where: { $0.0 == "public/Terminal.js" }), modules.contains(where: { $0.0 == "addons/fit/fit.js" }) else {
            throw Failure.missing(directory)
        }
        var script = loader
        for (path, code) in modules.sorted(by: { $0.0 < $1.0 }) {
            script += "define(\(jsonString(path)), function (require, module, exports) {\n\(code)\n});\n"
        }
        script += """
            var Terminal = load("public/Terminal.js").Terminal;
            Terminal.applyAddon(load("addons/fit/fit.js"));
            window.Terminal = Terminal;
            })();

            """
        let stylesheet = try String(contentsOfFile: (directory as NSString).appendingPathComponent("xterm.css"), encoding: .utf8)
        return (script, stylesheet)
    }

    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        return encoder
    }()

    private static func jsonString(_ text: String) -> String {
        String(decoding: (try? Self.encoder.encode(text)) ?? Data("\"\"".utf8), as: UTF8.self)
    }

    /// CommonJS as xterm's modules use it: relative paths only, each module run once.
    private static let loader = """
        /* xterm.js from Debian's node-xterm, joined by Portcullis (see XtermBundle.swift). */
        (function () {
        var definitions = {}, loaded = {};
        function define(name, body) { definitions[name] = body; }
        function resolve(from, request) {
          var parts = from.split("/"); parts.pop();
          request.split("/").forEach(function (part) { if (part === "..") parts.pop(); else if (part !== ".") parts.push(part); });
          var base = parts.join("/"), candidates = [base, base + ".js", base + "/index.js"];
          for (var i = 0; i < candidates.length; i++) if (definitions[candidates[i]]) return candidates[i];
          throw new Error("xterm: no module " + request + " (from " + from + ")");
        }
        function load(name) {
          if (loaded[name]) return loaded[name].exports;
          var module = { exports: {} };
          loaded[name] = module;
          definitions[name].call(module.exports, function (request) { return load(resolve(name, request)); }, module, module.exports);
          return module.exports;
        }

        """
}
