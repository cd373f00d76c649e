// The YAML writer behind the monitoring files: exact output, hostile strings
// that come back unchanged through a YAML parser, and exact refusals.
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { yamlString } from "../../components/render/escape";
import { renderYaml } from "../../components/render/yaml";
import { exactly, LONG, LONG_MULTILINE } from "./fixtures";

const HOSTILE: Record<string, string> = {
    empty: "",
    "a YAML 1.1 boolean": "yes",
    "a null": "null",
    "a number": "1e3",
    "a key and value": "a: b",
    "a list item": "- a",
    "a comment": "# not a comment",
    "a flow map": "{a: 1}",
    "an anchor": "&a *a",
    "a Go template": "{{ $labels.instance }}",
    "double quotes": 'say "hi"',
    "single quotes": "it's",
    backslash: "C:\\dir\\",
    newline: "a\nb",
    "carriage return": "a\rb",
    tab: "a\tb",
    "next line (U+0085)": "a\u0085b",
    "line separator (U+2028)": "a\u2028b",
    "paragraph separator (U+2029)": "a\u2029b",
    "DEL and a C1 control": "a\u007f\u009bb",
    "byte order mark": "\ufeffa",
    NUL: "a\u0000b",
    unicode: "Ñoño 東京 🐘",
    "10,000 characters": LONG,
    "10,000 characters with line breaks": LONG_MULTILINE,
};

describe("yamlString", () => {
    it.each([
        ["plain", "obcms", '"obcms"'],
        ["quote and backslash", 'a"b\\c', '"a\\"b\\\\c"'],
        ["newline and tab", "a\nb\tc", '"a\\nb\\tc"'],
        ["the line breaks JSON leaves raw", "\u0085\u2028\u2029", '"\\u0085\\u2028\\u2029"'],
        ["DEL, C1 and BOM", "\u007f\u0080\ufeff", '"\\u007f\\u0080\\ufeff"'],
        ["non-characters", "\ufffe\uffff", '"\\ufffe\\uffff"'],
        ["unicode", "東京 🐘", '"東京 🐘"'],
    ])("writes %s exactly", (_, value, written) => {
        expect(yamlString(value)).toBe(written);
    });

    it("refuses a lone surrogate, which has no UTF-8 form", () => {
        expect(() => yamlString("a\ud800b")).toThrow(exactly('YAML: cannot write "a\\ud800b": lone surrogates are not allowed'));
    });

    it.each(Object.entries(HOSTILE))("round-trips %s as one string value through a YAML parser", (_, value) => {
        const text = renderYaml("test", { key: value, list: [value] });
        expect(text.split("\n").filter((line) => line.startsWith("key:"))).toHaveLength(1);
        expect(parse(text)).toEqual({ key: value, list: [value] });
    });

    it.each(Object.entries(HOSTILE).filter(([, value]) => value.length < 1000))("round-trips %s as a map key", (_, value) => {
        expect(parse(renderYaml("test", { [value]: "v", other: "w" }))).toEqual({ [value]: "v", other: "w" });
    });

    it.each(["null", "NULL", "true", "False", "yes", "No", "on", "OFF", "y", "N"])(
        "quotes the key %s, which YAML would read as another type",
        (word) => {
            expect(renderYaml("test", { [word]: 1 })).toBe(`# test\n"${word}": 1\n`);
        },
    );

    it("refuses a key longer than YAML's 1024-character limit on implicit keys, as written", () => {
        const plain = "k".repeat(1025);
        expect(() => renderYaml("test", { [plain]: 1 })).toThrow(
            exactly(`YAML: cannot write "${plain}": a key cannot be longer than 1024 characters as written`),
        );
        const quoted = "a b".padEnd(1023, "c");
        expect(() => renderYaml("test", { [quoted]: 1 })).toThrow(
            exactly(`YAML: cannot write "${quoted}": a key cannot be longer than 1024 characters as written`),
        );
        expect(parse(renderYaml("test", { [plain.slice(1)]: 1, [quoted.slice(1)]: 2 }))).toEqual({
            [plain.slice(1)]: 1,
            [quoted.slice(1)]: 2,
        });
    });
});

describe("renderYaml", () => {
    it("writes block style with sorted keys, quoted strings and bare numbers and booleans", () => {
        const text = renderYaml("Rendered for a test.", {
            z: 1,
            a: { list: [1, "two", true], empty: [], none: {}, "needs quoting": 2.5 },
            items: [{ b: "x", a: "y" }, [1, [2]], []],
        });
        expect(text).toBe(
            [
                "# Rendered for a test.",
                "a:",
                "  empty: []",
                "  list:",
                "    - 1",
                '    - "two"',
                "    - true",
                '  "needs quoting": 2.5',
                "  none: {}",
                "items:",
                '  - a: "y"',
                '    b: "x"',
                "  - - 1",
                "    - - 2",
                "  - []",
                "z: 1",
                "",
            ].join("\n"),
        );
        expect(parse(text)).toEqual({
            z: 1,
            a: { list: [1, "two", true], empty: [], none: {}, "needs quoting": 2.5 },
            items: [{ b: "x", a: "y" }, [1, [2]], []],
        });
    });

    it("renders equal input to equal bytes, whatever the key order", () => {
        expect(renderYaml("c", { b: { y: 1, x: 2 }, a: 3 })).toBe(renderYaml("c", { a: 3, b: { x: 2, y: 1 } }));
    });

    it.each([
        ["NaN", Number.NaN],
        ["Infinity", Number.POSITIVE_INFINITY],
    ])("refuses %s", (name, value) => {
        expect(() => renderYaml("c", { a: value })).toThrow(exactly(`YAML: cannot write "${name}": not a finite number`));
    });

    it("refuses a comment that would spill onto a second line", () => {
        expect(() => renderYaml("a\nb: c", {})).toThrow(exactly('YAML: cannot write "a\\nb: c": a comment cannot span lines'));
    });
});
