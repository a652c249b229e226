// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @dev The two ERC-20 calls the market makes. Return values are checked leniently (see _callToken)
///      so tokens that return nothing still work; fee-on-transfer tokens are not supported.
interface IERC20Transfers {
    function transfer(address to, uint256 value) external returns (bool);
    function transferFrom(address from, address to, uint256 value) external returns (bool);
}

/// @title GpuMarket
/// @notice Settlement for fedgpu: providers stake, consumers deposit and authorize hub tenants, the
///         hub's settler key escrows an attempt's budget for one provider, pays that provider from a
///         usage receipt it signed (EIP-712), refunds the rest, and slashes it (bounded) at fault.
///
/// Money model. Every token the market holds is in exactly one bucket:
///   Σ freeBalanceOf + Σ open escrows + Σ (active + unbonding stake) + Σ earningsOf + burned
///     == token.balanceOf(this)
/// Only deposit/withdraw, stake/withdrawStake and claimEarnings move tokens in or out; everything
/// else moves value between buckets. `burned` is the part of slashes no one receives: it never
/// leaves the contract.
///
/// Trust model: assume every key can leak. What each key can do, at worst:
///   - settler (the hub): open escrows only within what a consumer authorized that settler for a
///     tenant (cap, expiry; an authorization names the one settler that may draw on it, so another
///     hub's key on the same market cannot) and only for a provider that allows that settler and
///     has free stake to back it; pay an escrow only to the provider it was opened for, only what
///     that provider signed, never more than the escrow; refund to the consumer; slash only the
///     escrow's provider, once per escrow it opened, at most `slashBond`, and in all at most what
///     the provider allowed that settler to slash; the consumer gets at most what the escrow held
///     or paid (the rest is burned). It cannot move free balances, stake or earnings anywhere
///     else. It can grief: leave escrows open (anyone releases them after their expiry), refund
///     instead of paying (the provider's signed receipt is its evidence), or slash an honest
///     provider that allows it, up to what that provider allowed.
///   - owner: proposes settlers; a new settler takes effect only SETTLER_DELAY after the proposal
///     and no later than SETTLER_ACCEPT_WINDOW after that (events on both steps), so consumers and
///     providers can revoke and leave first. It can revoke a settler at once, which stops that
///     settler's escrows from being settled (their consumers release them after expiry; providers
///     keep their signed receipts). It holds no funds and cannot touch balances.
///   - provider: allows the settlers it serves, each with a bound on what that settler may slash
///     in all (as a consumer's authorization bounds what a settler may spend; lowering it waits out
///     the unbonding delay, then that settler's open escrows); signs receipts for its own escrows
///     only; the hub checks them before sending.
///   - consumer: authorizes, revokes, deposits, withdraws its free balance. Nothing else.
///   - anyone: releases an escrow left open past its expiry (to its consumer, and its provider's
///     bond), so an absent consumer cannot keep a provider's stake locked.
/// Reputation can be recomputed by anyone from Settled and Slashed events.
contract GpuMarket {
    // ---------------------------------------------------------------- types

    enum EscrowState {
        None,
        Open,
        Settled,
        Refunded
    }

    /// @dev Two slots per escrow. Slot 0 (consumer, amount, state) is the one a settlement writes;
    ///      slot 1 (provider, expiry, slashed) is written once when it opens and read after.
    ///      `amount` is what is locked while Open, what the provider was paid once Settled, and what
    ///      went back to the consumer once Refunded. While Open and not slashed, the escrow holds
    ///      `slashBond` of its provider's active stake locked.
    struct Escrow {
        address consumer;
        uint88 amount;
        EscrowState state;
        address provider;
        uint64 expiresAt;
        bool slashed;
        /// id of the settler key that opened it (settlerIdOf): only that key closes or slashes it
        /// while it is still a settler
        uint16 opener;
    }

    struct ProviderStake {
        uint256 active;
        uint256 unbonding;
        uint64 unlockTime;
        /// part of `active` that backs open escrows (slashBond each); it cannot be unstaked
        uint192 locked;
    }

    /// @notice What a consumer allows one settler to lock from its deposit for a hub tenant
    ///         (tenantId = keccak256(hub id ‖ "/" ‖ namespace ‖ "/" ‖ namespace uid)): `remaining`
    ///         is drawn down by every escrow that settler opens for it.
    struct Authorization {
        uint128 remaining;
        uint64 expiresAt;
    }

    /// @notice What a provider allows one settler: to open escrows that lock its stake while
    ///         `allowed`, and to slash it, over all time, at most `slashable` more. `open` counts
    ///         that settler's escrows holding a bond of the provider's stake. A lower bound takes
    ///         effect `unbondingDelay` after the provider asks (`lowerTo` from `lowerAt`), and only
    ///         once that settler has no escrow open toward it (none opens meanwhile): a provider
    ///         cannot shrink the slash of an escrow open.
    struct SettlerAllowance {
        uint128 slashable;
        uint64 lowerAt;
        uint32 open;
        bool allowed;
        uint128 lowerTo;
    }

    /// @notice What a provider signs when an attempt ends (EIP-712 struct `UsageReceipt`).
    /// @param jobId           the escrow's key on chain (the hub derives it from the GpuJob uid and epoch)
    /// @param epoch           the attempt's fencing epoch; a zombie attempt carries a stale one
    /// @param gpuSeconds      GPU-seconds the provider measured for the attempt
    /// @param pricePerGpuHour agreed price in token units (18 decimals) per GPU-hour
    /// @param amount          what the provider charges: must equal gpuSeconds * pricePerGpuHour / 3600,
    ///                        rounded down, so the signed numbers can never disagree
    /// @param provider        the provider wallet; it must be the signer and the escrow's provider
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
    /// @notice Bounds on the unbonding delay: long enough that a provider cannot leave between a
    ///         fault and its slash, short enough that unlock times always fit their uint64.
    uint256 public constant MIN_UNBONDING_DELAY = 1 hours;
    uint256 public constant MAX_UNBONDING_DELAY = 365 days;
    /// @notice Longest an escrow may stay open before anyone may release it to its consumer.
    uint256 public constant MAX_ESCROW_DURATION = 90 days;
    /// @notice Time between proposing a settler and the earliest moment it may act.
    uint256 public constant SETTLER_DELAY = 2 days;
    /// @notice How long after its delay a proposal may still be accepted. A stale proposal would
    ///         otherwise let whoever holds the owner key later install that settler at once.
    uint256 public constant SETTLER_ACCEPT_WINDOW = 7 days;
    /// @notice The largest slash bond: one escrow's bond (and its sum over escrows) always fits the
    ///         packed stake lock.
    uint256 public constant MAX_SLASH_BOND = type(uint88).max;

    // ------------------------------------------------------------- storage

    IERC20Transfers public immutable token;
    /// @notice Seconds between requestUnstake and the earliest withdrawStake.
    uint256 public immutable unbondingDelay;
    /// @notice The most one slash takes, and the stake each open escrow locks from its provider.
    uint256 public immutable slashBond;

    uint256 private immutable cachedChainId;
    bytes32 private immutable cachedDomainSeparator;

    address public owner;
    mapping(address account => bool) public isSettler;
    /// @notice When a proposed settler may be accepted (0: no proposal).
    mapping(address account => uint256) public settlerEta;
    /// @notice A number for every address that was ever a settler (0: never), kept when it is
    ///         removed; an escrow records its opener by it, in space its second slot had free.
    mapping(address account => uint16) public settlerIdOf;
    mapping(uint16 id => address) public settlerById;
    uint16 private settlerCount;

    mapping(address consumer => uint256) public freeBalanceOf;
    mapping(address provider => uint256) public earningsOf;
    mapping(address provider => ProviderStake) private stakes;
    mapping(bytes32 jobId => Escrow) private escrows;
    /// @dev Keyed by the settler too: consent given to one hub's key is nothing to another's.
    mapping(address consumer => mapping(address settler => mapping(bytes32 tenant => Authorization))) private authorizations;
    /// @dev A provider's consent, per settler: no key it has not allowed can lock or slash its stake.
    mapping(address provider => mapping(address settler => SettlerAllowance)) private settlerAllowances;
    /// @notice Slashed stake that went to no one (above what the consumer could be compensated).
    uint256 public burned;

    /// @dev Transient (EIP-1153): the guard costs ~200 gas instead of two storage writes.
    bool private transient entered;

    // -------------------------------------------------------------- events

    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);
    event SettlerProposed(address indexed account, uint256 eta);
    event SettlerSet(address indexed account, bool enabled);
    event Staked(address indexed provider, uint256 amount, uint256 active);
    event UnstakeRequested(address indexed provider, uint256 amount, uint256 unbonding, uint64 unlockTime);
    event StakeWithdrawn(address indexed provider, uint256 amount);
    event Deposited(address indexed consumer, uint256 amount);
    event Withdrawn(address indexed consumer, uint256 amount);
    event Authorized(address indexed consumer, bytes32 indexed tenant, address indexed settler, uint256 cap, uint64 expiresAt);
    event AuthorizationRevoked(address indexed consumer, bytes32 indexed tenant, address indexed settler);
    /// @dev `effectiveAt`: now for a raise, `unbondingDelay` from now for a lower bound.
    event SettlerAllowed(address indexed provider, address indexed settler, uint256 slashable, uint64 effectiveAt);
    /// @dev The settler may still slash `slashable` until `until` (0 after).
    event SettlerDisallowed(address indexed provider, address indexed settler, uint256 slashable, uint64 until);
    event EscrowOpened(
        bytes32 indexed jobId,
        address indexed consumer,
        address indexed provider,
        uint256 amount,
        bytes32 tenant,
        uint64 expiresAt,
        uint256 authorizationLeft,
        address settler
    );
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
    /// @dev The consumer took back an escrow the settler left open past its expiry (a Refunded follows).
    event EscrowReclaimed(bytes32 indexed jobId, address indexed consumer, uint256 amount);
    /// @dev `requested` is what the settler asked for, `amount` what was taken from the stake,
    ///      `compensated` the part the consumer received; the rest (amount - compensated) is burned.
    event Slashed(
        address indexed provider,
        bytes32 indexed jobId,
        address indexed consumer,
        uint32 epoch,
        uint256 requested,
        uint256 amount,
        uint256 compensated,
        bytes32 reason
    );
    event EarningsClaimed(address indexed provider, uint256 amount);

    // -------------------------------------------------------------- errors

    error NotOwner(address caller);
    error NotSettler(address caller);
    error ZeroAddress();
    error InvalidToken(address token);
    error UnbondingDelayTooShort(uint256 delay, uint256 min);
    error UnbondingDelayTooLong(uint256 delay, uint256 max);
    error Reentrancy();
    error ZeroAmount();
    error InsufficientBalance(uint256 available, uint256 requested);
    error InsufficientStake(uint256 active, uint256 requested);
    error InsufficientFreeStake(address provider, uint256 free, uint256 needed);
    error NothingToWithdraw();
    error NothingToClaim();
    error UnbondingNotElapsed(uint64 unlockTime);
    error EscrowTooLarge(uint256 requested, uint256 max);
    error EscrowExists(bytes32 jobId, EscrowState state);
    error UnknownJob(bytes32 jobId);
    error EscrowClosed(bytes32 jobId, EscrowState state);
    error EscrowNotExpired(bytes32 jobId, uint64 expiresAt);
    error InvalidExpiry(uint64 expiresAt, uint256 earliest, uint256 latest);
    error NotAuthorized(address consumer, address settler, bytes32 tenant);
    error NotEscrowSettler(bytes32 jobId, address caller, address opener);
    error SettlerNotAllowed(address provider, address settler);
    error SlashAllowanceTooLow(address provider, address settler, uint256 slashable, uint256 needed);
    error LoweringDue(address provider, address settler, uint64 lowerAt);
    error SlashBondTooLarge(uint256 bond, uint256 max);
    error AuthorizationExpired(address consumer, bytes32 tenant, uint64 expiresAt);
    error AuthorizationExceeded(address consumer, bytes32 tenant, uint256 remaining, uint256 requested);
    error AmountMismatch(bytes32 jobId, uint256 amount, uint256 expected);
    error InvalidSignature(bytes32 jobId);
    error MalleableSignature(bytes32 jobId);
    error WrongSigner(bytes32 jobId, address recovered);
    error WrongProvider(bytes32 jobId, address provider, address escrowProvider);
    error AlreadySlashed(bytes32 jobId);
    error SlashTooLarge(uint256 requested, uint256 max);
    error NoProposal(address account);
    error SettlerDelayNotElapsed(address account, uint256 eta);
    error SettlerProposalExpired(address account, uint256 eta);
    error EmptyBatch();
    error TokenTransferFailed();

    // --------------------------------------------------------- constructor

    /// @param settlers_ settlers active from the start (a new market has no escrows to protect);
    ///        every later one goes through proposeSettler/acceptSettler.
    constructor(address token_, uint256 unbondingDelay_, address owner_, uint256 slashBond_, address[] memory settlers_) {
        if (token_.code.length == 0) revert InvalidToken(token_);
        if (owner_ == address(0)) revert ZeroAddress();
        if (unbondingDelay_ < MIN_UNBONDING_DELAY) revert UnbondingDelayTooShort(unbondingDelay_, MIN_UNBONDING_DELAY);
        if (unbondingDelay_ > MAX_UNBONDING_DELAY) revert UnbondingDelayTooLong(unbondingDelay_, MAX_UNBONDING_DELAY);
        if (slashBond_ > MAX_SLASH_BOND) revert SlashBondTooLarge(slashBond_, MAX_SLASH_BOND);
        token = IERC20Transfers(token_);
        unbondingDelay = unbondingDelay_;
        slashBond = slashBond_;
        owner = owner_;
        cachedChainId = block.chainid;
        cachedDomainSeparator = _buildDomainSeparator();
        emit OwnershipTransferred(address(0), owner_);
        for (uint256 i; i < settlers_.length; ++i) {
            if (settlers_[i] == address(0)) revert ZeroAddress();
            _enableSettler(settlers_[i]);
        }
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

    /// @notice Step one of adding a settler: it may be accepted SETTLER_DELAY from now.
    function proposeSettler(address account) external onlyOwner {
        if (account == address(0)) revert ZeroAddress();
        uint256 eta = block.timestamp + SETTLER_DELAY;
        settlerEta[account] = eta;
        emit SettlerProposed(account, eta);
    }

    /// @notice Step two: the proposal has waited out the delay, and not SETTLER_ACCEPT_WINDOW more,
    ///         and becomes a settler.
    function acceptSettler(address account) external onlyOwner {
        uint256 eta = settlerEta[account];
        if (eta == 0) revert NoProposal(account);
        if (block.timestamp < eta) revert SettlerDelayNotElapsed(account, eta);
        if (block.timestamp > eta + SETTLER_ACCEPT_WINDOW) revert SettlerProposalExpired(account, eta);
        settlerEta[account] = 0;
        _enableSettler(account);
    }

    /// @notice Removes a settler, or withdraws a pending proposal, at once (removing is always safe).
    function revokeSettler(address account) external onlyOwner {
        settlerEta[account] = 0;
        isSettler[account] = false;
        emit SettlerSet(account, false);
    }

    // ------------------------------------------------------------ providers

    function stake(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        uint256 active = stakes[msg.sender].active + amount;
        stakes[msg.sender].active = active;
        emit Staked(msg.sender, amount, active);
        _pull(msg.sender, amount);
    }

    /// @notice Moves `amount` of free active stake to unbonding. Each request restarts the clock for
    ///         the whole unbonding amount: simple, and never shortens a pending delay. Stake locked
    ///         by open escrows stays active.
    function requestUnstake(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        ProviderStake storage s = stakes[msg.sender];
        uint256 active = s.active;
        uint256 free = active - s.locked;
        if (free < amount) revert InsufficientStake(free, amount);
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

    /// @notice Lets `settler` open escrows that lock the caller's stake, and slash it at most
    ///         `slashable` in all (each slash draws it down). A raise holds at once (and drops a
    ///         lower bound still waiting; the same lower bound asked again keeps its clock); a
    ///         lower bound holds `unbondingDelay` from now, and not while the settler has an escrow
    ///         open toward the caller (none opens once it is due), so the faults of open escrows
    ///         are slashed in full. Each escrow opens only while the bound (the lower one, if one
    ///         waits) covers a bond for each of that settler's open escrows, and its own.
    function allowSettler(address settler, uint256 slashable) external {
        if (settler == address(0)) revert ZeroAddress();
        if (slashable > type(uint128).max) revert SlashTooLarge(slashable, type(uint128).max);
        SettlerAllowance storage a = settlerAllowances[msg.sender][settler];
        uint256 current = _applyLowering(a);
        uint64 effectiveAt = uint64(block.timestamp);
        if (slashable >= current) {
            a.slashable = uint128(slashable);
            a.lowerAt = 0;
            a.lowerTo = 0;
        } else if (a.lowerAt != 0 && a.lowerTo == slashable) {
            effectiveAt = a.lowerAt; // the same lower bound asked again keeps its clock
        } else {
            effectiveAt = uint64(block.timestamp + unbondingDelay);
            a.lowerTo = uint128(slashable);
            a.lowerAt = effectiveAt;
        }
        a.allowed = true;
        emit SettlerAllowed(msg.sender, settler, slashable, effectiveAt);
    }

    /// @notice Stops `settler` opening escrows for the caller, at once (a key the provider no
    ///         longer trusts). What it may slash falls to 0 `unbondingDelay` from now, once its open
    ///         escrows toward the caller are closed: their faults are still slashed until then.
    function disallowSettler(address settler) external {
        SettlerAllowance storage a = settlerAllowances[msg.sender][settler];
        uint256 current = _applyLowering(a);
        a.allowed = false;
        uint64 until = 0;
        if (current != 0 && a.lowerAt != 0 && a.lowerTo == 0) {
            until = a.lowerAt; // already falling to 0: its clock is kept
        } else if (current != 0) {
            until = uint64(block.timestamp + unbondingDelay);
            a.lowerTo = 0;
            a.lowerAt = until;
        }
        emit SettlerDisallowed(msg.sender, settler, current, until);
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

    /// @notice Lets `settler` lock up to `cap` of the caller's deposit in escrows for the hub tenant
    ///         `tenant` until `expiresAt`. Replaces any earlier authorization of that tenant for that
    ///         settler (it does not add up); other settlers get nothing from it.
    function authorize(bytes32 tenant, address settler, uint256 cap, uint64 expiresAt) external {
        if (settler == address(0)) revert ZeroAddress();
        if (cap == 0) revert ZeroAmount();
        if (cap > type(uint128).max) revert EscrowTooLarge(cap, type(uint128).max);
        if (expiresAt <= block.timestamp) revert InvalidExpiry(expiresAt, block.timestamp + 1, type(uint64).max);
        authorizations[msg.sender][settler][tenant] = Authorization(uint128(cap), expiresAt);
        emit Authorized(msg.sender, tenant, settler, cap, expiresAt);
    }

    /// @notice Withdraws an authorization: `settler` can open no new escrow for that tenant.
    ///         Escrows already open stay open until settled, refunded or reclaimed.
    function revoke(bytes32 tenant, address settler) external {
        delete authorizations[msg.sender][settler][tenant];
        emit AuthorizationRevoked(msg.sender, tenant, settler);
    }

    /// @notice Returns an escrow the settler left open past its expiry to its consumer: the hub
    ///         vanished, or kept it hostage. The provider's collateral is released with it. Anyone
    ///         may call it (the money only goes back to the consumer), so a provider is not kept
    ///         locked by a consumer that never comes back.
    function reclaimExpired(bytes32 jobId) external nonReentrant {
        Escrow storage e = escrows[jobId];
        EscrowState state = e.state;
        _requireOpen(jobId, state);
        address consumer = e.consumer;
        if (block.timestamp <= e.expiresAt) revert EscrowNotExpired(jobId, e.expiresAt);
        uint256 amount = e.amount;
        e.state = EscrowState.Refunded;
        if (!e.slashed) _release(e.provider, e.opener);
        freeBalanceOf[consumer] += amount;
        emit EscrowReclaimed(jobId, consumer, amount);
        emit Refunded(jobId, consumer, amount);
    }

    // ------------------------------------------------------------- settler

    /// @notice Locks `maxAmount` of the consumer's free balance for `jobId`, to pay `provider` only,
    ///         drawing on what the consumer authorized the calling settler for `tenant`, and locks
    ///         `slashBond` of the provider's free stake until the escrow closes. A jobId is used
    ///         once, ever: a settled or refunded job can never be reopened (idempotent hub retries).
    function openEscrow(
        bytes32 jobId,
        address consumer,
        address provider,
        bytes32 tenant,
        uint256 maxAmount,
        uint64 expiresAt
    ) external onlySettler nonReentrant {
        EscrowState state = escrows[jobId].state;
        if (state != EscrowState.None) revert EscrowExists(jobId, state);
        if (maxAmount == 0) revert ZeroAmount();
        if (maxAmount > MAX_ESCROW) revert EscrowTooLarge(maxAmount, MAX_ESCROW);
        if (provider == address(0)) revert ZeroAddress();
        SettlerAllowance storage allowance = settlerAllowances[provider][msg.sender];
        if (!allowance.allowed) revert SettlerNotAllowed(provider, msg.sender);
        if (expiresAt <= block.timestamp || expiresAt > block.timestamp + MAX_ESCROW_DURATION) {
            revert InvalidExpiry(expiresAt, block.timestamp + 1, block.timestamp + MAX_ESCROW_DURATION);
        }
        uint256 left = _drawAuthorization(consumer, msg.sender, tenant, maxAmount);
        uint256 available = freeBalanceOf[consumer];
        if (available < maxAmount) revert InsufficientBalance(available, maxAmount);
        unchecked {
            freeBalanceOf[consumer] = available - maxAmount;
        }
        _lock(provider);
        _cover(allowance, provider);
        escrows[jobId] = Escrow(consumer, uint88(maxAmount), EscrowState.Open, provider, expiresAt, false, settlerIdOf[msg.sender]);
        emit EscrowOpened(jobId, consumer, provider, maxAmount, tenant, expiresAt, left, msg.sender);
    }

    /// @notice Pays the escrow's provider what it signed for (at most what the escrow covers) and
    ///         refunds the rest.
    /// @param providerSig 65-byte signature (r ‖ s ‖ v) over the EIP-712 UsageReceipt.
    function settle(UsageReceipt calldata receipt, bytes calldata providerSig) external onlySettler nonReentrant {
        if (providerSig.length != 65) revert InvalidSignature(receipt.jobId);
        bytes32 r = bytes32(providerSig[0:32]);
        bytes32 s = bytes32(providerSig[32:64]);
        uint8 v = uint8(providerSig[64]);
        (address consumer, uint256 paid, uint256 refunded, bool unlock) = _settle(receipt, v, r, s, settlerIdOf[msg.sender]);
        if (paid != 0) earningsOf[receipt.provider] += paid;
        if (refunded != 0) freeBalanceOf[consumer] += refunded;
        if (unlock) _unlock(receipt.provider, 1);
    }

    /// @notice Settles many jobs atomically: one bad receipt reverts the batch with an error naming
    ///         its jobId, so the hub drops it and resends. Credits (and released collateral) are
    ///         summed per provider and per consumer in memory and written once each, which is where
    ///         the per-job saving comes from.
    function settleBatch(SignedReceipt[] calldata batch) external onlySettler nonReentrant {
        uint256 n = batch.length;
        if (n == 0) revert EmptyBatch();
        Ledger memory providerCredits = _newLedger(n);
        Ledger memory consumerCredits = _newLedger(n);
        uint16 caller = settlerIdOf[msg.sender];
        for (uint256 i; i < n; ) {
            SignedReceipt calldata item = batch[i];
            (address consumer, uint256 paid, uint256 refunded, bool unlock) = _settle(item.receipt, item.v, item.r, item.s, caller);
            _credit(providerCredits, item.receipt.provider, paid, unlock ? 1 : 0);
            _credit(consumerCredits, consumer, refunded, 0);
            unchecked {
                ++i;
            }
        }
        _flushProviders(providerCredits);
        _flush(consumerCredits, freeBalanceOf);
    }

    /// @notice Unlocks the whole escrow back to the consumer (the user cancelled before any usage).
    function refund(bytes32 jobId) external onlySettler nonReentrant {
        Escrow storage e = escrows[jobId];
        _requireOpen(jobId, e.state);
        _requireOpener(jobId, e.opener, settlerIdOf[msg.sender]);
        address consumer = e.consumer;
        uint256 amount = e.amount;
        e.state = EscrowState.Refunded;
        if (!e.slashed) _release(e.provider, e.opener);
        freeBalanceOf[consumer] += amount;
        emit Refunded(jobId, consumer, amount);
    }

    /// @notice Takes up to `amount` (at most slashBond, and at most what the provider still allows
    ///         the caller to slash) of the escrow's provider's stake, once per escrow, by the key
    ///         that opened it only: a key that takes over a revoked settler's escrows closes them
    ///         but never slashes through them. The consumer receives at most what the escrow holds
    ///         (Open) or paid (Settled), nothing for a refunded one; the rest is burned. While the
    ///         escrow is open the bond it locked covers the slash in full.
    function slash(address provider, uint256 amount, bytes32 jobId, uint32 epoch, bytes32 reason)
        external
        onlySettler
        nonReentrant
    {
        if (amount == 0) revert ZeroAmount();
        if (amount > slashBond) revert SlashTooLarge(amount, slashBond);
        Escrow storage e = escrows[jobId];
        EscrowState state = e.state;
        if (state == EscrowState.None) revert UnknownJob(jobId);
        uint16 opener = e.opener;
        if (opener != settlerIdOf[msg.sender]) revert NotEscrowSettler(jobId, msg.sender, settlerById[opener]);
        if (provider != e.provider) revert WrongProvider(jobId, provider, e.provider);
        if (e.slashed) revert AlreadySlashed(jobId);
        e.slashed = true;
        // Read before this escrow's bond is released: a lower bound never holds while it is open.
        SettlerAllowance storage allowance = settlerAllowances[provider][msg.sender];
        uint256 slashable = _applyLowering(allowance);
        if (state == EscrowState.Open) {
            _unlock(provider, 1);
            if (slashBond != 0) allowance.open -= 1;
        }
        uint256 taken = _takeStake(provider, amount < slashable ? amount : slashable);
        unchecked {
            allowance.slashable = uint128(slashable - taken); // taken <= slashable
        }
        uint256 cost = state == EscrowState.Refunded ? 0 : e.amount;
        uint256 compensated = taken < cost ? taken : cost;
        address consumer = e.consumer;
        if (compensated != 0) freeBalanceOf[consumer] += compensated;
        if (taken != compensated) burned += taken - compensated;
        emit Slashed(provider, jobId, consumer, epoch, amount, taken, compensated, reason);
    }

    // --------------------------------------------------------------- views

    /// @notice `locked` is the part of `active` backing open escrows; active - locked is free stake.
    function stakeOf(address provider)
        external
        view
        returns (uint256 active, uint256 unbonding, uint64 unlockTime, uint256 locked)
    {
        ProviderStake storage s = stakes[provider];
        return (s.active, s.unbonding, s.unlockTime, s.locked);
    }

    /// @notice Active stake not backing an open escrow: what the next escrow could lock.
    function freeStakeOf(address provider) external view returns (uint256) {
        ProviderStake storage s = stakes[provider];
        return s.active - s.locked;
    }

    function escrowOf(bytes32 jobId) external view returns (address consumer, uint256 amount, EscrowState state) {
        Escrow storage e = escrows[jobId];
        return (e.consumer, e.amount, e.state);
    }

    /// @notice The provider an escrow pays, when it may be released to its consumer, whether it was
    ///         slashed, and the settler key that opened it.
    function escrowTermsOf(bytes32 jobId) external view returns (address provider, uint64 expiresAt, bool slashed, address opener) {
        Escrow storage e = escrows[jobId];
        return (e.provider, e.expiresAt, e.slashed, settlerById[e.opener]);
    }

    function isSlashed(bytes32 jobId) external view returns (bool) {
        return escrows[jobId].slashed;
    }

    /// @notice Whether `provider` lets `settler` open escrows on its stake, what that settler may
    ///         slash from it now, and a lower bound waiting to hold (`lowerTo` from `lowerAt`; 0: none).
    function settlerAllowanceOf(address provider, address settler)
        external
        view
        returns (bool allowed, uint256 slashable, uint256 lowerTo, uint64 lowerAt, uint32 open)
    {
        SettlerAllowance storage a = settlerAllowances[provider][settler];
        uint64 at = a.lowerAt;
        if (at != 0 && block.timestamp >= at && a.open == 0) {
            uint256 lowered = a.lowerTo < a.slashable ? a.lowerTo : a.slashable;
            return (a.allowed, lowered, 0, 0, 0);
        }
        return (a.allowed, a.slashable, a.lowerTo, at, a.open);
    }

    function authorizationOf(address consumer, address settler, bytes32 tenant) external view returns (uint256 remaining, uint64 expiresAt) {
        Authorization storage a = authorizations[consumer][settler][tenant];
        return (a.remaining, a.expiresAt);
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
    ///      so a batch can sum them. Cheap checks run before the signature recovery. A receipt above
    ///      the escrow is paid what the escrow covers: the escrow never becomes unsettleable.
    function _settle(UsageReceipt calldata receipt, uint8 v, bytes32 r, bytes32 s, uint16 caller)
        private
        returns (address consumer, uint256 paid, uint256 refunded, bool unlock)
    {
        bytes32 jobId = receipt.jobId;
        Escrow storage e = escrows[jobId];
        (address escrowConsumer, uint88 held, EscrowState state) = (e.consumer, e.amount, e.state);
        _requireOpen(jobId, state);
        _requireOpener(jobId, e.opener, caller);

        uint256 amount = receipt.amount;
        uint256 expected = (uint256(receipt.gpuSeconds) * receipt.pricePerGpuHour) / SECONDS_PER_HOUR;
        if (amount != expected) revert AmountMismatch(jobId, amount, expected);

        address provider = receipt.provider;
        address escrowProvider = e.provider;
        if (provider != escrowProvider) revert WrongProvider(jobId, provider, escrowProvider);
        address signer = _recover(_digest(receipt), v, r, s, jobId);
        if (signer != provider) revert WrongSigner(jobId, signer);

        consumer = escrowConsumer;
        paid = amount < held ? amount : held;
        unchecked {
            refunded = held - paid;
        }
        unlock = !e.slashed;
        // The bond itself is released by the caller (summed per provider in a batch); its opener's
        // count of escrows open toward the provider drops here.
        if (unlock && slashBond != 0) settlerAllowances[provider][settlerById[e.opener]].open -= 1;
        // One SSTORE: the slot keeps the consumer and now records what was paid.
        e.amount = uint88(paid);
        e.state = EscrowState.Settled;
        emit Settled(jobId, provider, consumer, receipt.epoch, receipt.gpuSeconds, paid, refunded, receipt.usageHash);
    }

    /// @dev Only the settler key that opened an escrow closes it: another hub's key on the same
    ///      market (or a thief holding it) cannot refund its escrows under running attempts. Once
    ///      the opener is no longer a settler (a key rotated out, or revoked as stolen), any
    ///      settler may settle or refund its escrows, so none is stranded (slash never takes over).
    function _requireOpener(bytes32 jobId, uint16 opener, uint16 caller) private view {
        if (caller == opener) return;
        address openedBy = settlerById[opener];
        if (isSettler[openedBy]) revert NotEscrowSettler(jobId, msg.sender, openedBy);
    }

    /// @dev Makes `account` a settler, numbering it the first time.
    function _enableSettler(address account) private {
        isSettler[account] = true;
        if (settlerIdOf[account] == 0) {
            uint16 id = ++settlerCount; // checked: reverts past 65,535 settlers ever
            settlerIdOf[account] = id;
            settlerById[id] = account;
        }
        emit SettlerSet(account, true);
    }

    function _drawAuthorization(address consumer, address settler, bytes32 tenant, uint256 amount) private returns (uint256 left) {
        Authorization storage a = authorizations[consumer][settler][tenant];
        uint64 expiresAt = a.expiresAt;
        if (expiresAt == 0) revert NotAuthorized(consumer, settler, tenant);
        if (block.timestamp > expiresAt) revert AuthorizationExpired(consumer, tenant, expiresAt);
        uint256 remaining = a.remaining;
        if (remaining < amount) revert AuthorizationExceeded(consumer, tenant, remaining, amount);
        unchecked {
            left = remaining - amount;
        }
        a.remaining = uint128(left);
    }

    /// @dev Locks one bond of the provider's free stake for a new escrow.
    /// @dev Locks one bond of the provider's free stake for a new escrow.
    function _lock(address provider) private {
        uint256 bond = slashBond;
        if (bond == 0) return;
        ProviderStake storage s = stakes[provider];
        uint256 locked = s.locked;
        uint256 free = s.active - locked;
        if (free < bond) revert InsufficientFreeStake(provider, free, bond);
        s.locked = uint192(locked + bond);
    }

    /// @dev Counts a new escrow of the caller toward `provider`, if what the caller may slash (its
    ///      floor while a lower bound waits) covers a bond for each of its escrows open toward the
    ///      provider and this one: each can then be slashed in full, whatever other keys do. While
    ///      a lower bound is due it waits for the open ones to close, and none opens meanwhile.
    function _cover(SettlerAllowance storage a, address provider) private {
        uint256 bond = slashBond;
        if (bond == 0) return;
        _applyLowering(a);
        uint64 at = a.lowerAt;
        if (at != 0 && block.timestamp >= at) revert LoweringDue(provider, msg.sender, at);
        uint32 open = a.open;
        uint256 floor = _slashableFloor(a);
        uint256 needed = bond * (uint256(open) + 1);
        if (floor < needed) revert SlashAllowanceTooLow(provider, msg.sender, floor, needed);
        a.open = open + 1;
    }

    /// @dev An unslashed escrow closed: its bond goes back to the provider's free stake, and its
    ///      opener has one escrow fewer open toward the provider.
    function _release(address provider, uint16 opener) private {
        if (slashBond == 0) return;
        _unlock(provider, 1);
        settlerAllowances[provider][settlerById[opener]].open -= 1;
    }

    /// @dev What the settler may slash now: a lower bound applied first once its delay has passed
    ///      and the settler has no escrow open toward the provider.
    function _applyLowering(SettlerAllowance storage a) private returns (uint256 slashable) {
        slashable = a.slashable;
        uint64 at = a.lowerAt;
        if (at == 0 || block.timestamp < at || a.open != 0) return slashable;
        uint256 lowerTo = a.lowerTo;
        if (lowerTo < slashable) slashable = lowerTo;
        a.slashable = uint128(slashable);
        a.lowerAt = 0;
        a.lowerTo = 0;
    }

    /// @dev The least the settler may slash from now through a waiting lower bound.
    function _slashableFloor(SettlerAllowance storage a) private view returns (uint256) {
        uint256 slashable = a.slashable;
        if (a.lowerAt == 0) return slashable;
        uint256 lowerTo = a.lowerTo;
        return lowerTo < slashable ? lowerTo : slashable;
    }

    /// @dev Releases `count` bonds of the provider's locked stake (escrows closed or slashed).
    function _unlock(address provider, uint256 count) private {
        uint256 release = slashBond * count;
        if (release == 0) return;
        ProviderStake storage s = stakes[provider];
        s.locked = uint192(uint256(s.locked) - release);
    }

    /// @dev Removes up to `amount` from the provider's stake, active first, then unbonding.
    function _takeStake(address provider, uint256 amount) private returns (uint256 taken) {
        ProviderStake storage s = stakes[provider];
        uint256 active = s.active;
        uint256 freeActive = active - s.locked; // the lock of other escrows stays whole
        uint256 fromActive = amount < freeActive ? amount : freeActive;
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
        /// escrows whose bond is released, per account (providers only)
        uint256[] unlocks;
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
        ledger.unlocks = new uint256[](capacity);
        ledger.table = new uint256[](size);
    }

    function _credit(Ledger memory ledger, address account, uint256 amount, uint256 unlocks) private pure {
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
                if (unlocks != 0) ledger.unlocks[count] = unlocks;
                ledger.count = count + 1;
                table[slot] = count + 1;
                return;
            }
            if (ledger.accounts[position - 1] == account) {
                ledger.sums[position - 1] += amount;
                if (unlocks != 0) ledger.unlocks[position - 1] += unlocks;
                return;
            }
            slot = (slot + 1) & mask;
        }
        assert(false); // unreachable: the table is never more than half full
    }

    /// @dev One earnings write and one stake write per distinct provider.
    function _flushProviders(Ledger memory ledger) private {
        for (uint256 i; i < ledger.count; ++i) {
            address account = ledger.accounts[i];
            uint256 sum = ledger.sums[i];
            if (sum != 0) earningsOf[account] += sum;
            uint256 unlocks = ledger.unlocks[i];
            if (unlocks != 0) _unlock(account, unlocks);
        }
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
