// The runbook's security checklist as policies, in the order the README lists them.
import type { Policies } from "@pulumi/policy";
import { auditLogging } from "./audit-logging";
import { backupsEncrypted } from "./backups-encrypted";
import { clientTlsRequired } from "./client-tls-required";
import { containersUnprivileged } from "./containers-unprivileged";
import { credentialFilesPrivate } from "./credential-files-private";
import { credentialsNotInContainerConfig } from "./credentials-not-in-container-config";
import { dataOnNamedVolumes } from "./data-on-named-volumes";
import { dcsQuorum } from "./dcs-quorum";
import { dcsTls } from "./dcs-tls";
import { generatedPasswordsNotExposed } from "./generated-passwords-not-exposed";
import { minimumReplicas } from "./minimum-replicas";
import { monitoringEnabled } from "./monitoring-enabled";
import { monitoringReadOnly } from "./monitoring-read-only";
import { noPublicPorts } from "./no-public-ports";
import { noTrustOrPlaintextAuth } from "./no-trust-or-plaintext-auth";
import { patroniApiAuthenticated } from "./patroni-api-authenticated";
import { replicationRestricted } from "./replication-restricted";
import { slotWalBounded } from "./slot-wal-bounded";
import { strongGeneratedPasswords } from "./strong-generated-passwords";
import { synchronousReplication } from "./synchronous-replication";

export const POLICY_PACK_NAME = "obcms-database";

export const policies: Policies = [
    noPublicPorts,
    noTrustOrPlaintextAuth,
    clientTlsRequired,
    replicationRestricted,
    strongGeneratedPasswords,
    monitoringReadOnly,
    credentialsNotInContainerConfig,
    generatedPasswordsNotExposed,
    credentialFilesPrivate,
    containersUnprivileged,
    dataOnNamedVolumes,
    slotWalBounded,
    minimumReplicas,
    synchronousReplication,
    dcsTls,
    dcsQuorum,
    patroniApiAuthenticated,
    monitoringEnabled,
    auditLogging,
    backupsEncrypted,
];
