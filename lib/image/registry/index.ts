export { RegistryClient } from './registry-client.js';
export type {
  BlobDownload, FetchBlobsOptions, PushImageInput, PushImageResult, RegistryClientOptions, ResolvedImage, ResolveOptions,
} from './registry-client.js';
export type { BlobProgress, FetchBlobOptions } from './fetch-blob.js';
export type { BlobSource, OpenedUpload, PushBlobOptions } from './upload-blob.js';
export { RegistryError, DigestMismatchError } from './errors.js';
export { DockerConfigCredentials, StaticCredentials, dockerConfigPath, findCredentials } from './credentials.js';
export type { CredentialSource, Credentials } from './credentials.js';
export {
  ContainerConfigSchema, DescriptorSchema, ImageConfigSchema, ImageIndexSchema, ImageManifestSchema, MANIFEST_ACCEPT, MediaType,
} from './manifest.js';
export type { ContainerConfig, Descriptor, History, ImageConfig, ImageIndex, ImageManifest, Platform } from './manifest.js';
export { choosePlatform, formatPlatform, hostPlatform, parsePlatform } from './platform.js';
export type { PlatformSpec } from './platform.js';
export { pLimit } from './p-limit.js';
export type { Limit } from './p-limit.js';
export type { RetryPolicy } from './retry.js';
export { isLoopback } from './transport.js';
export { login, logout, verifyLogin, registryHost, type LoginOptions } from './login.js';
