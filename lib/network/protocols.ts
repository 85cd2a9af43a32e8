/** The protocols a port is published for (docker's), apart from the schemas so that reading ports needs no zod. */
export const PROTOCOLS = ['tcp', 'udp', 'sctp'] as const;
export type Protocol = (typeof PROTOCOLS)[number];
