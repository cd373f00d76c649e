// The obcms-database policy pack, for
//   pulumi preview --policy-pack policy --policy-pack-config policy/config/<stack>.json
// The policies live in ./policies so tests can run them without starting the
// pack's server, which this constructor does.
import { PolicyPack } from "@pulumi/policy";
import { POLICY_PACK_NAME, policies } from "./policies";

new PolicyPack(POLICY_PACK_NAME, {
    description: "The obcms-database runbook's security checklist, enforced on the resources the program declares.",
    // Without a config file every policy blocks; config/staging.json makes them advisory.
    enforcementLevel: "mandatory",
    policies,
});
