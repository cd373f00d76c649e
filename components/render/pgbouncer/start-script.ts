import { shellWord } from "../escape";
import { FILES } from "../paths";
import { scriptHeader } from "../shell-scripts";

/** PgBouncer, with the userlist readable by its service user only. */
export function renderPgbouncerStart(): string {
    return [...scriptHeader(), `exec pgbouncer ${shellWord(FILES.pgbouncerIni)}`, ""].join("\n");
}
