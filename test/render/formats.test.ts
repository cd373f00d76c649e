// The readers the round-trip tests rely on, checked against examples written
// by hand from each format's documentation: a lenient reader would let an
// escaping bug through.
import { describe, expect, it } from "vitest";
import { readLibpqConninfo, readPgbouncerConnstring, readPgpassLine, readPostgresqlConf, readSqlQuoted, readUserlistLine } from "./formats";

describe("test readers", () => {
    it("readPgpassLine splits at unescaped colons and removes the escaping backslashes", () => {
        expect(readPgpassLine("host:5432:*:user:p\\:w\\\\d")).toEqual(["host", "5432", "*", "user", "p:w\\d"]);
        expect(readPgpassLine("a:b")).toEqual(["a", "b"]);
    });

    it("readUserlistLine reads doubled quotes as one and rejects a lone quote inside a field", () => {
        expect(readUserlistLine('"a""b" "c"')).toEqual(['a"b', "c"]);
        expect(() => readUserlistLine('"a"b" "c"')).toThrow('userlist: expected a quote at 3 in "\\"a\\"b\\" \\"c\\""');
    });

    it("readPgbouncerConnstring doubles quotes, keeps backslashes literal and rejects a backslash-escaped quote", () => {
        expect(readPgbouncerConnstring("host='a''b\\c' port=5432")).toEqual({ host: "a'b\\c", port: "5432" });
        expect(() => readPgbouncerConnstring("dbname='a\\'b' port=1")).toThrow("syntax error in connection string");
    });

    it("readLibpqConninfo takes a backslash as escaping the next character", () => {
        expect(readLibpqConninfo("host='a\\'b\\\\c' port=5432")).toEqual({ host: "a'b\\c", port: "5432" });
        expect(() => readLibpqConninfo("host='a")).toThrow("unterminated quoted string in connection info string");
    });

    it("readPostgresqlConf de-escapes strings, keeps bare values and rejects text after a value", () => {
        expect(readPostgresqlConf("# c\na = 'x''y\\n\\\\'\nb.c = on # comment\n")).toEqual({ a: "x'y\n\\", "b.c": "on" });
        expect(() => readPostgresqlConf("a = 'x'y'")).toThrow("postgresql.conf: text after the value in \"a = 'x'y'\"");
    });

    it("readSqlQuoted ends at the first undoubled quote", () => {
        expect(readSqlQuoted("'it''s' rest", "'")).toEqual({ value: "it's", rest: " rest" });
        expect(readSqlQuoted('"a""b"', '"')).toEqual({ value: 'a"b', rest: "" });
    });
});
