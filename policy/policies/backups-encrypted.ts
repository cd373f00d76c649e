import type { ResourceValidationPolicy } from "@pulumi/policy";
import { uploads, validateContainer } from "./containers";
import { exposure } from "./credential-files-private";
import { parseIni } from "./parse";

/** pgBackRest's config files, e.g. pgbackrest.conf and the program's pgbackrest-restore.conf. */
const PGBACKREST_CONF = /(^|\/)pgbackrest[^/]*\.conf$/;
/** Options whose value is a secret: the cipher passphrase and S3 keys. */
const SECRET_OPTION = /^repo\d+-(cipher-pass|s3-key|s3-key-secret|s3-token)$/;

export const backupsEncrypted: ResourceValidationPolicy = {
    name: "backups-encrypted",
    description:
        "Every pgBackRest repository a container writes (one without repoN-host) is encrypted (repoN-cipher-type not none), and a config holding the passphrase or S3 keys is private like any credential file.",
    enforcementLevel: "mandatory",
    // The config holds the cipher passphrase, so at a preview that generates
    // it the SDK reports that this check could not run; `pulumi up` runs it.
    validateResource: validateContainer((props, _args, reportViolation) => {
        for (const upload of uploads(props).filter((u) => PGBACKREST_CONF.test(u.file))) {
            const options = new Map([...parseIni(upload.content ?? "").values()].flatMap((section) => [...section]));
            const repos = new Set([...options.keys()].flatMap((key) => /^(repo\d+)-/.exec(key)?.[1] ?? []));
            for (const repo of [...repos].sort()) {
                const cipher = options.get(`${repo}-cipher-type`) ?? "none";
                if (!options.has(`${repo}-host`) && cipher === "none") {
                    reportViolation(`${upload.file}: repository ${repo} is written unencrypted (${repo}-cipher-type = none)`);
                }
            }
            const problem = [...options.keys()].some((key) => SECRET_OPTION.test(key)) ? exposure(upload) : undefined;
            if (problem !== undefined) {
                reportViolation(problem);
            }
        }
    }),
};
