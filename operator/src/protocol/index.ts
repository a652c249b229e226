export { EdgeError, rejectReasons } from './edge-error.js';
export type { RejectReason } from './edge-error.js';
export { defaultEdgeLimits, edgeLimits } from './limits.js';
export type { EdgeLimits } from './limits.js';
export { StreamValidator, validateAgentMessage } from './validate.js';
export type { AgentMessageKind, ValidationResult } from './validate.js';
export { NonceBook, challengeText, signChallenge, verifyProof } from './wallet-proof.js';
export type { MessageSigner, NonceBookOptions, ProofResult, RedeemOutcome, VerifyProofOptions, WalletChallenge, WalletProof } from './wallet-proof.js';
export { TokenBucket } from './rate-limit.js';
export type { TokenBucketOptions } from './rate-limit.js';
export {
  Sequencer,
  agentMessage,
  decodeAgentFrame,
  defaultMaxAgentMessageBytes,
  defaultMaxHubMessageBytes,
  errorCodeFor,
  hubMessage,
  protocolVersion,
  tolerantMarketplaceService,
} from './framing.js';
export type { AgentFrame, AgentMessageBody, HubMessageBody } from './framing.js';
export { isDns1123Subdomain } from './patterns.js';
