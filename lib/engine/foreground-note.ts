/** The note (owners.ts) of a foreground container (foreground.ts, and the quick run's): it carries no `nsbox.owner` label. */
export const FOREGROUND_NOTE = { foreground: true } as const;
