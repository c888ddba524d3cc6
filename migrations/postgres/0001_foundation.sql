-- Foundation: staff accounts and sessions, citizens, campaigns with categories and candidates.

CREATE TABLE local_secret (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    secret TEXT NOT NULL
);

CREATE TABLE staff_users (
    id BIGSERIAL PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('admin', 'organizer', 'unit_handler', 'expert', 'auditor')),
    password_hash TEXT NOT NULL,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until TIMESTAMPTZ,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Only the SHA-256 of a token is kept, so a leaked table gives no usable token.
CREATE TABLE staff_sessions (
    token_digest TEXT PRIMARY KEY,
    staff_id BIGINT NOT NULL REFERENCES staff_users (id),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);
CREATE INDEX staff_sessions_staff ON staff_sessions (staff_id);

-- A citizen is known only by the keyed hash of the openid.
CREATE TABLE voters (
    voter_id TEXT PRIMARY KEY,
    first_seen_at TIMESTAMPTZ NOT NULL,
    last_login_at TIMESTAMPTZ NOT NULL,
    logins BIGINT NOT NULL DEFAULT 1
);

CREATE TABLE campaigns (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('selection', 'evaluation')),
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    timezone TEXT NOT NULL,
    phases TEXT NOT NULL,
    rules TEXT NOT NULL,
    is_draft BOOLEAN NOT NULL DEFAULT TRUE,
    -- Candidate numbers (编号) are handed out from here and never reused.
    next_candidate_number BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE categories (
    id BIGSERIAL PRIMARY KEY,
    campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
    name TEXT NOT NULL,
    winners INTEGER NOT NULL CHECK (winners >= 0),
    UNIQUE (campaign_id, name)
);

CREATE TABLE candidates (
    id BIGSERIAL PRIMARY KEY,
    campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
    category_id BIGINT NOT NULL REFERENCES categories (id),
    number BIGINT NOT NULL,
    name TEXT NOT NULL,
    unit TEXT NOT NULL,
    department TEXT NOT NULL,
    title TEXT NOT NULL,
    photo_url TEXT NOT NULL,
    story TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('nominated', 'approved', 'rejected', 'withdrawn')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (campaign_id, number)
);
CREATE INDEX candidates_listing ON candidates (campaign_id, status, number);
