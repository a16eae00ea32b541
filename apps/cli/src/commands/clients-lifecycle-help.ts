/** Help of `clients rotate-secret|disable|enable`, apart from the command so --help loads no app. */
export const LIFECYCLE_HELP = {
  'clients rotate-secret': `Usage: token-ledger clients rotate-secret --id ID [--overlap SECONDS]

Generates a new secret for a confidential client and prints it once (the same as
POST /v1/clients/{id}/secret). The replaced secret keeps working for --overlap seconds (default 0).
`,
  'clients disable': `Usage: token-ledger clients disable --id ID

Disables a client (the same as POST /v1/clients/{id}/disable): every OAuth endpoint answers it
401 invalid_client and it gets no new families. To revoke its families too, use the HTTP API with
{"revokeFamilies": true} (it needs the running read models).
`,
  'clients enable': `Usage: token-ledger clients enable --id ID

Enables a disabled client again (the same as POST /v1/clients/{id}/enable).
`,
} as const;

export type LifecycleCommand = keyof typeof LIFECYCLE_HELP;
