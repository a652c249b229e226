// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @dev The two ERC-20 calls the market makes. Return values are checked leniently (see _callToken)
///      so tokens that return nothing still work; fee-on-transfer tokens are not supported.
interface IERC20Transfers {
    function transfer(address to, uint256 value) external returns (bool);
    function transferFrom(address from, address to, uint256 value) external returns (bool);
}

/// @title GpuMarket
/// @notice Settlement for fedgpu: providers stake, consumers deposit, the hub's settler key escrows a
///         job's budget, pays providers from usage receipts they signed (EIP-712), refunds the rest,
///         and slashes providers at fault in favour of the consumer.
///
/// Money model. Every token the market holds is in exactly one bucket:
///   Σ freeBalanceOf + Σ open escrows + Σ (active + unbonding stake) + Σ earningsOf == token.balanceOf(this)
/// Only deposit/withdraw, stake/withdrawStake and claimEarnings move tokens in or out; everything
/// else moves value between buckets.
///
/// Trust model. The settler (the hub) decides *when* to open, settle, refund and slash, but it can
/// only pay a provider exactly what that provider signed for, never more than the job's escrow, and
/// only once per job. Reputation can be recomputed by anyone from Settled and Slashed events.
contract GpuMarket {
    // ---------------------------------------------------------------- types

    enum EscrowState {
        None,
        Open,
        Settled,
        Refunded
    }

    /// @dev One storage slot per job (160 + 88 + 8 bits), so a settlement costs one cold read and
    ///      one write. `amount` is what is locked while Open, what the provider was paid once
    ///      Settled, and what went back to the consumer once Refunded.
    struct Escrow {
        address consumer;
        uint88 amount;
        EscrowState state;
    }

    struct ProviderStake {
        uint256 active;
        uint256 unbonding;
        uint64 unlockTime;
    }

    /// @notice What a provider signs when an attempt ends (EIP-712 struct `UsageReceipt`).
    /// @param jobId           the job's key on chain (the hub derives it from the GpuJob uid)
    /// @param epoch           the attempt's fencing epoch; a zombie attempt carries a stale one
    /// @param gpuSeconds      GPU-seconds the provider measured for the attempt
    /// @param pricePerGpuHour agreed price in token units (18 decimals) per GPU-hour
    /// @param amount          what the provider charges: must equal gpuSeconds * pricePerGpuHour / 3600,
    ///                        rounded down, so the signed numbers can never disagree
    /// @param provider        the provider wallet; it must be the signer and it is the payee
    /// @param usageHash       hash of the agent's detailed usage record (evidence for disputes)
    struct UsageReceipt {
        bytes32 jobId;
        uint32 epoch;
        uint64 gpuSeconds;
        uint256 pricePerGpuHour;
        uint256 amount;
        address provider;
        bytes32 usageHash;
    }

    /// @dev A receipt with its signature split into (v, r, s): a static struct, so an array of them
    ///      is ABI-encoded inline with no offsets, which keeps settleBatch calldata small.
    struct SignedReceipt {
        UsageReceipt receipt;
        uint8 v;
        bytes32 r;
        bytes32 s;
    }

    // ------------------------------------------------------------ constants

    bytes32 public constant USAGE_RECEIPT_TYPEHASH = keccak256(
        "UsageReceipt(bytes32 jobId,uint32 epoch,uint64 gpuSeconds,uint256 pricePerGpuHour,uint256 amount,address provider,bytes32 usageHash)"
    );
    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 private constant NAME_HASH = keccak256("fedgpu GpuMarket");
    bytes32 private constant VERSION_HASH = keccak256("1");

    /// @dev secp256k1n / 2: signatures with a larger s are the malleable twin of a valid one (EIP-2).
    uint256 private constant HALF_CURVE_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;
    uint256 private constant SECONDS_PER_HOUR = 3600;

    /// @notice The largest escrow one job can lock (the packed slot keeps 88 bits: ~309M credits).
    uint256 public constant MAX_ESCROW = type(uint88).max;
    /// @notice Upper bound on the unbonding delay, so unlock times always fit their uint64.
    uint256 public constant MAX_UNBONDING_DELAY = 365 days;

    // ------------------------------------------------------------- storage

    IERC20Transfers public immutable token;
    /// @notice Seconds between requestUnstake and the earliest withdrawStake.
    uint256 public immutable unbondingDelay;

    uint256 private immutable cachedChainId;
    bytes32 private immutable cachedDomainSeparator;

    address public owner;
    mapping(address account => bool) public isSettler;

    mapping(address consumer => uint256) public freeBalanceOf;
    mapping(address provider => uint256) public earningsOf;
    mapping(address provider => ProviderStake) private stakes;
    mapping(bytes32 jobId => Escrow) private escrows;
    mapping(bytes32 jobId => mapping(uint32 epoch => bool)) public isSlashed;

    /// @dev Transient (EIP-1153): the guard costs ~200 gas instead of two storage writes.
    bool private transient entered;

    // -------------------------------------------------------------- events

    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);
    event SettlerSet(address indexed account, bool enabled);
    event Staked(address indexed provider, uint256 amount, uint256 active);
    event UnstakeRequested(address indexed provider, uint256 amount, uint256 unbonding, uint64 unlockTime);
    event StakeWithdrawn(address indexed provider, uint256 amount);
    event Deposited(address indexed consumer, uint256 amount);
    event Withdrawn(address indexed consumer, uint256 amount);
    event EscrowOpened(bytes32 indexed jobId, address indexed consumer, uint256 amount);
    /// @dev Enough for reputation and audit: who was paid, for which attempt, how much, and the
    ///      evidence hash. `refunded` is what went back to the consumer's free balance.
    event Settled(
        bytes32 indexed jobId,
        address indexed provider,
        address indexed consumer,
        uint32 epoch,
        uint64 gpuSeconds,
        uint256 amount,
        uint256 refunded,
        bytes32 usageHash
    );
    event Refunded(bytes32 indexed jobId, address indexed consumer, uint256 amount);
    /// @dev `requested` is what the settler asked for, `amount` what the stake could cover.
    event Slashed(
        address indexed provider,
        bytes32 indexed jobId,
        address indexed consumer,
        uint32 epoch,
        uint256 requested,
        uint256 amount,
        bytes32 reason
    );
    event EarningsClaimed(address indexed provider, uint256 amount);

    // -------------------------------------------------------------- errors

    error NotOwner(address caller);
    error NotSettler(address caller);
    error ZeroAddress();
    error InvalidToken(address token);
    error UnbondingDelayTooLong(uint256 delay, uint256 max);
    error Reentrancy();
    error ZeroAmount();
    error InsufficientBalance(uint256 available, uint256 requested);
    error InsufficientStake(uint256 active, uint256 requested);
    error NothingToWithdraw();
    error NothingToClaim();
    error UnbondingNotElapsed(uint64 unlockTime);
    error EscrowTooLarge(uint256 requested, uint256 max);
    error EscrowExists(bytes32 jobId, EscrowState state);
    error UnknownJob(bytes32 jobId);
    error EscrowClosed(bytes32 jobId, EscrowState state);
    error AmountMismatch(bytes32 jobId, uint256 amount, uint256 expected);
    error AmountExceedsEscrow(bytes32 jobId, uint256 amount, uint256 escrowed);
    error InvalidSignature(bytes32 jobId);
    error MalleableSignature(bytes32 jobId);
    error WrongSigner(bytes32 jobId, address recovered);
    error AlreadySlashed(bytes32 jobId, uint32 epoch);
    error EmptyBatch();
    error TokenTransferFailed();

    // --------------------------------------------------------- constructor

    constructor(address token_, uint256 unbondingDelay_, address owner_) {
        if (token_.code.length == 0) revert InvalidToken(token_);
        if (owner_ == address(0)) revert ZeroAddress();
        if (unbondingDelay_ > MAX_UNBONDING_DELAY) revert UnbondingDelayTooLong(unbondingDelay_, MAX_UNBONDING_DELAY);
        token = IERC20Transfers(token_);
        unbondingDelay = unbondingDelay_;
        owner = owner_;
        cachedChainId = block.chainid;
        cachedDomainSeparator = _buildDomainSeparator();
        emit OwnershipTransferred(address(0), owner_);
    }

    // ----------------------------------------------------------- modifiers

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _;
    }

    modifier onlySettler() {
        if (!isSettler[msg.sender]) revert NotSettler(msg.sender);
        _;
    }

    modifier nonReentrant() {
        if (entered) revert Reentrancy();
        entered = true;
        _;
        entered = false;
    }

    // ---------------------------------------------------------------- admin

    function transferOwnership(address newOwner) external onlyOwner {
        if (newOwner == address(0)) revert ZeroAddress();
        emit OwnershipTransferred(owner, newOwner);
        owner = newOwner;
    }

    function setSettler(address account, bool enabled) external onlyOwner {
        if (account == address(0)) revert ZeroAddress();
        isSettler[account] = enabled;
        emit SettlerSet(account, enabled);
    }

    // ------------------------------------------------------------ providers

    function stake(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        uint256 active = stakes[msg.sender].active + amount;
        stakes[msg.sender].active = active;
        emit Staked(msg.sender, amount, active);
        _pull(msg.sender, amount);
    }

    /// @notice Moves `amount` from active to unbonding stake. Each request restarts the clock for
    ///         the whole unbonding amount: simple, and never shortens a pending delay.
    function requestUnstake(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        ProviderStake storage s = stakes[msg.sender];
        uint256 active = s.active;
        if (active < amount) revert InsufficientStake(active, amount);
        uint256 unbonding = s.unbonding + amount;
        uint64 unlockTime = uint64(block.timestamp + unbondingDelay);
        unchecked {
            s.active = active - amount;
        }
        s.unbonding = unbonding;
        s.unlockTime = unlockTime;
        emit UnstakeRequested(msg.sender, amount, unbonding, unlockTime);
    }

    /// @notice Pays out all unbonding stake once the delay has passed. Until then it stays slashable.
    function withdrawStake() external nonReentrant {
        ProviderStake storage s = stakes[msg.sender];
        uint256 amount = s.unbonding;
        if (amount == 0) revert NothingToWithdraw();
        if (block.timestamp < s.unlockTime) revert UnbondingNotElapsed(s.unlockTime);
        s.unbonding = 0;
        s.unlockTime = 0;
        emit StakeWithdrawn(msg.sender, amount);
        _push(msg.sender, amount);
    }

    /// @notice Pull-payment of everything settled to the caller so far.
    function claimEarnings() external nonReentrant {
        uint256 amount = earningsOf[msg.sender];
        if (amount == 0) revert NothingToClaim();
        earningsOf[msg.sender] = 0;
        emit EarningsClaimed(msg.sender, amount);
        _push(msg.sender, amount);
    }

    // ------------------------------------------------------------ consumers

    function deposit(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        freeBalanceOf[msg.sender] += amount;
        emit Deposited(msg.sender, amount);
        _pull(msg.sender, amount);
    }

    function withdraw(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        uint256 available = freeBalanceOf[msg.sender];
        if (available < amount) revert InsufficientBalance(available, amount);
        unchecked {
            freeBalanceOf[msg.sender] = available - amount;
        }
        emit Withdrawn(msg.sender, amount);
        _push(msg.sender, amount);
    }

    // ------------------------------------------------------------- settler

    /// @notice Locks `maxAmount` of the consumer's free balance for `jobId`. A jobId is used once,
    ///         ever: a settled or refunded job can never be reopened (idempotent hub retries).
    function openEscrow(bytes32 jobId, address consumer, uint256 maxAmount) external onlySettler nonReentrant {
        EscrowState state = escrows[jobId].state;
        if (state != EscrowState.None) revert EscrowExists(jobId, state);
        if (maxAmount == 0) revert ZeroAmount();
        if (maxAmount > MAX_ESCROW) revert EscrowTooLarge(maxAmount, MAX_ESCROW);
        uint256 available = freeBalanceOf[consumer];
        if (available < maxAmount) revert InsufficientBalance(available, maxAmount);
        unchecked {
            freeBalanceOf[consumer] = available - maxAmount;
        }
        escrows[jobId] = Escrow(consumer, uint88(maxAmount), EscrowState.Open);
        emit EscrowOpened(jobId, consumer, maxAmount);
    }

    /// @notice Pays the provider what it signed for and refunds the rest of the escrow.
    /// @param providerSig 65-byte signature (r ‖ s ‖ v) over the EIP-712 UsageReceipt.
    function settle(UsageReceipt calldata receipt, bytes calldata providerSig) external onlySettler nonReentrant {
        if (providerSig.length != 65) revert InvalidSignature(receipt.jobId);
        bytes32 r = bytes32(providerSig[0:32]);
        bytes32 s = bytes32(providerSig[32:64]);
        uint8 v = uint8(providerSig[64]);
        (address consumer, uint256 refunded) = _settle(receipt, v, r, s);
        if (receipt.amount != 0) earningsOf[receipt.provider] += receipt.amount;
        if (refunded != 0) freeBalanceOf[consumer] += refunded;
    }

    /// @notice Settles many jobs atomically: one bad receipt reverts the batch with an error naming
    ///         its jobId, so the hub drops it and resends. Credits are summed per provider and per
    ///         consumer in memory and written once each, which is where the per-job saving comes from.
    function settleBatch(SignedReceipt[] calldata batch) external onlySettler nonReentrant {
        uint256 n = batch.length;
        if (n == 0) revert EmptyBatch();
        Ledger memory providerCredits = _newLedger(n);
        Ledger memory consumerCredits = _newLedger(n);
        for (uint256 i; i < n; ) {
            SignedReceipt calldata item = batch[i];
            (address consumer, uint256 refunded) = _settle(item.receipt, item.v, item.r, item.s);
            _credit(providerCredits, item.receipt.provider, item.receipt.amount);
            _credit(consumerCredits, consumer, refunded);
            unchecked {
                ++i;
            }
        }
        _flush(providerCredits, earningsOf);
        _flush(consumerCredits, freeBalanceOf);
    }

    /// @notice Unlocks the whole escrow back to the consumer (the user cancelled before any usage).
    function refund(bytes32 jobId) external onlySettler nonReentrant {
        Escrow memory e = escrows[jobId];
        _requireOpen(jobId, e.state);
        escrows[jobId] = Escrow(e.consumer, e.amount, EscrowState.Refunded);
        freeBalanceOf[e.consumer] += e.amount;
        emit Refunded(jobId, e.consumer, e.amount);
    }

    /// @notice Takes up to `amount` of the provider's stake (active first, then unbonding) and gives
    ///         it to the job's consumer. At most once per (jobId, epoch); when the stake cannot cover
    ///         `amount` the market takes what there is and the event says how much.
    function slash(address provider, uint256 amount, bytes32 jobId, uint32 epoch, bytes32 reason)
        external
        onlySettler
        nonReentrant
    {
        if (amount == 0) revert ZeroAmount();
        Escrow storage e = escrows[jobId];
        if (e.state == EscrowState.None) revert UnknownJob(jobId);
        if (isSlashed[jobId][epoch]) revert AlreadySlashed(jobId, epoch);
        isSlashed[jobId][epoch] = true;
        uint256 taken = _takeStake(provider, amount);
        address consumer = e.consumer;
        if (taken != 0) freeBalanceOf[consumer] += taken;
        emit Slashed(provider, jobId, consumer, epoch, amount, taken, reason);
    }

    // --------------------------------------------------------------- views

    function stakeOf(address provider) external view returns (uint256 active, uint256 unbonding, uint64 unlockTime) {
        ProviderStake storage s = stakes[provider];
        return (s.active, s.unbonding, s.unlockTime);
    }

    function escrowOf(bytes32 jobId) external view returns (address consumer, uint256 amount, EscrowState state) {
        Escrow memory e = escrows[jobId];
        return (e.consumer, e.amount, e.state);
    }

    /// @notice The EIP-712 domain separator receipts are signed under.
    function domainSeparator() public view returns (bytes32) {
        // Recomputed only if the chain forked to a new id, so old-chain receipts cannot replay.
        return block.chainid == cachedChainId ? cachedDomainSeparator : _buildDomainSeparator();
    }

    /// @notice The digest a provider signs for `receipt` (for off-chain tooling and tests).
    function receiptDigest(UsageReceipt calldata receipt) external view returns (bytes32) {
        return _digest(receipt);
    }

    // ------------------------------------------------------------ internals

    /// @dev Checks one receipt, closes its escrow and emits Settled. Credits are left to the caller
    ///      so a batch can sum them. Cheap checks run before the signature recovery.
    function _settle(UsageReceipt calldata receipt, uint8 v, bytes32 r, bytes32 s)
        private
        returns (address consumer, uint256 refunded)
    {
        bytes32 jobId = receipt.jobId;
        Escrow memory e = escrows[jobId];
        _requireOpen(jobId, e.state);

        uint256 amount = receipt.amount;
        uint256 expected = (uint256(receipt.gpuSeconds) * receipt.pricePerGpuHour) / SECONDS_PER_HOUR;
        if (amount != expected) revert AmountMismatch(jobId, amount, expected);
        if (amount > e.amount) revert AmountExceedsEscrow(jobId, amount, e.amount);

        address provider = receipt.provider;
        address signer = _recover(_digest(receipt), v, r, s, jobId);
        if (signer != provider) revert WrongSigner(jobId, signer);

        consumer = e.consumer;
        unchecked {
            refunded = e.amount - amount; // amount <= e.amount checked above
        }
        // One SSTORE: the slot keeps the consumer and now records what was paid.
        escrows[jobId] = Escrow(consumer, uint88(amount), EscrowState.Settled);
        emit Settled(jobId, provider, consumer, receipt.epoch, receipt.gpuSeconds, amount, refunded, receipt.usageHash);
    }

    /// @dev Removes up to `amount` from the provider's stake, active first, then unbonding.
    function _takeStake(address provider, uint256 amount) private returns (uint256 taken) {
        ProviderStake storage s = stakes[provider];
        uint256 active = s.active;
        uint256 fromActive = amount < active ? amount : active;
        uint256 unbonding = s.unbonding;
        uint256 rest = amount - fromActive;
        uint256 fromUnbonding = rest < unbonding ? rest : unbonding;
        unchecked {
            if (fromActive != 0) s.active = active - fromActive;
            if (fromUnbonding != 0) s.unbonding = unbonding - fromUnbonding;
            taken = fromActive + fromUnbonding; // both bounded by stake balances
        }
    }

    function _requireOpen(bytes32 jobId, EscrowState state) private pure {
        if (state == EscrowState.Open) return;
        if (state == EscrowState.None) revert UnknownJob(jobId);
        revert EscrowClosed(jobId, state);
    }

    /// @dev Credits summed in memory during a batch: one entry per distinct account, found through
    ///      a small open-addressing hash table so a lookup costs the same however many distinct
    ///      accounts the batch pays (a linear scan made batches of many providers quadratic).
    struct Ledger {
        address[] accounts;
        uint256[] sums;
        uint256 count;
        /// position (index + 1) of an account's entry, at slot hash(account); 0 = empty. At least
        /// twice as many slots as accounts, so probing always finds an empty one.
        uint256[] table;
    }

    function _newLedger(uint256 capacity) private pure returns (Ledger memory ledger) {
        uint256 size = 2;
        while (size < capacity * 2) size <<= 1; // at most 256 doublings
        ledger.accounts = new address[](capacity);
        ledger.sums = new uint256[](capacity);
        ledger.table = new uint256[](size);
    }

    function _credit(Ledger memory ledger, address account, uint256 amount) private pure {
        uint256[] memory table = ledger.table;
        uint256 mask = table.length - 1;
        // Addresses are hash outputs already; a crafted collision only costs extra probes.
        uint256 slot = uint160(account) & mask;
        for (uint256 probe; probe <= mask; ++probe) {
            uint256 position = table[slot];
            if (position == 0) {
                uint256 count = ledger.count;
                ledger.accounts[count] = account;
                ledger.sums[count] = amount;
                ledger.count = count + 1;
                table[slot] = count + 1;
                return;
            }
            if (ledger.accounts[position - 1] == account) {
                ledger.sums[position - 1] += amount;
                return;
            }
            slot = (slot + 1) & mask;
        }
        assert(false); // unreachable: the table is never more than half full
    }

    /// @dev One storage write per distinct account with a non-zero sum.
    function _flush(Ledger memory ledger, mapping(address => uint256) storage balances) private {
        for (uint256 i; i < ledger.count; ++i) {
            uint256 sum = ledger.sums[i];
            if (sum != 0) balances[ledger.accounts[i]] += sum;
        }
    }

    function _digest(UsageReceipt calldata receipt) private view returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(
                USAGE_RECEIPT_TYPEHASH,
                receipt.jobId,
                receipt.epoch,
                receipt.gpuSeconds,
                receipt.pricePerGpuHour,
                receipt.amount,
                receipt.provider,
                receipt.usageHash
            )
        );
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator(), structHash));
    }

    function _recover(bytes32 digest, uint8 v, bytes32 r, bytes32 s, bytes32 jobId) private pure returns (address) {
        if (uint256(s) > HALF_CURVE_ORDER) revert MalleableSignature(jobId);
        if (v != 27 && v != 28) revert InvalidSignature(jobId);
        address signer = ecrecover(digest, v, r, s);
        if (signer == address(0)) revert InvalidSignature(jobId);
        return signer;
    }

    function _buildDomainSeparator() private view returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, block.chainid, address(this)));
    }

    function _pull(address from, uint256 amount) private {
        _callToken(abi.encodeCall(IERC20Transfers.transferFrom, (from, address(this), amount)));
    }

    function _push(address to, uint256 amount) private {
        _callToken(abi.encodeCall(IERC20Transfers.transfer, (to, amount)));
    }

    /// @dev Bubbles the token's own revert (e.g. insufficient allowance) so callers see why; a token
    ///      that returns false is turned into TokenTransferFailed.
    function _callToken(bytes memory data) private {
        (bool ok, bytes memory ret) = address(token).call(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 32), mload(ret))
            }
        }
        if (ret.length != 0 && (ret.length < 32 || abi.decode(ret, (uint256)) != 1)) revert TokenTransferFailed();
    }
}
