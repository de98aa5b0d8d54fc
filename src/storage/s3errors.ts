/** S3 failures as the operator reads them: the storage, the bucket and key, what failed. No credentials. */
import { OperationError, errorMessage } from '../core/errors.js';

interface SdkError {
  name?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
  $fault?: string;
}

function sdk(error: unknown): SdkError {
  return typeof error === 'object' && error !== null ? (error as SdkError) : {};
}

export function statusOf(error: unknown): number | undefined {
  return sdk(error).$metadata?.httpStatusCode;
}

export function isMissing(error: unknown): boolean {
  const e = sdk(error);
  return e.name === 'NoSuchKey' || e.name === 'NotFound' || e.name === 'NoSuchUpload' || e.Code === 'NoSuchKey' || statusOf(error) === 404;
}

export function isPreconditionFailed(error: unknown): boolean {
  const e = sdk(error);
  return e.name === 'PreconditionFailed' || e.Code === 'PreconditionFailed' || statusOf(error) === 412;
}

export function isNotImplemented(error: unknown): boolean {
  const e = sdk(error);
  return e.name === 'NotImplemented' || e.Code === 'NotImplemented' || statusOf(error) === 501;
}

function describe(error: unknown): string {
  const e = sdk(error);
  const status = statusOf(error);
  const message = errorMessage(error);
  if (e.name === 'CredentialsProviderError' || /Could not load credentials/i.test(message)) {
    return 'no credentials: none in the config and none found by the AWS SDK (environment, shared files, instance role)';
  }
  const code = e.name && e.name !== 'Error' && !message.includes(e.name) ? `${e.name}: ` : '';
  const http = status && !message.includes(String(status)) ? ` (HTTP ${status})` : '';
  return `${code}${message || 'no answer'}${http}`;
}

export class S3Failure extends OperationError {
  constructor(storage: string, bucket: string, key: string | undefined, operation: string, cause: unknown) {
    super(`storage ${storage}: ${operation} of s3://${bucket}/${key ?? ''} failed: ${describe(cause)}`, {
      cause,
      hint: hintFor(cause),
    });
  }
}

function hintFor(error: unknown): string | undefined {
  const status = statusOf(error);
  const e = sdk(error);
  if (status === 403 || e.name === 'AccessDenied' || e.name === 'InvalidAccessKeyId' || e.name === 'SignatureDoesNotMatch') {
    return 'Check the storage\'s accessKeyId and secretAccessKey (or the SDK\'s credentials) and the bucket policy.';
  }
  if (e.name === 'NoSuchBucket') return 'Create the bucket, or fix "bucket" (and "endpoint", "region") in the storage\'s config.';
  if (status === undefined) return 'Check that the endpoint is reachable ("endpoint", "region"); the request was retried before giving up.';
  return undefined;
}
