-- 0002_verify_events: one row per verification event, as the verify service reported it.
--
-- Privacy: the plaintext phone number never reaches ClickHouse. A number is stored only as
--   phone_hash    keyed HMAC-SHA256 (hex), equal for equal numbers, not reversible without the key
--   phone_masked  display form 1381234**** (no more than the segment: with the last 4 digits
--                 beside phone_segment it would spell out the whole number)
--   phone_segment number segment, the first 7 digits
--
-- Duplicates: a re-delivered event is inserted again with the same (app_id, event_id);
-- ReplacingMergeTree keeps one row per key after background merges. Count with FINAL
-- (or uniqExact(app_id, event_id)) to get exact numbers before merges have run:
--   SELECT count() FROM riskflow.verify_events FINAL WHERE ts >= today()
--
-- Retention: one partition per day (20240131); drop old days with
--   ALTER TABLE riskflow.verify_events DROP PARTITION 20240131

CREATE TABLE IF NOT EXISTS riskflow.verify_events
(
    event_id      String          COMMENT 'idempotency key from the verify service',
    ts            DateTime('UTC') COMMENT 'when the verification happened',
    app_id        String          COMMENT 'tenant',
    flow          String          COMMENT 'one_click_login, number_verify, h5_quick_login or sms_fallback',
    phone_hash    String          COMMENT 'keyed HMAC-SHA256 of the number, 64 hex digits',
    phone_masked  String          COMMENT 'masked number, 1381234****',
    phone_segment String          COMMENT 'number segment, first 7 digits',
    ip            String          COMMENT 'client IPv4 or IPv6 address',
    carrier       String          COMMENT 'CM, CU, CT or empty',
    platform      String          COMMENT 'android, ios, harmony, h5, web or empty',
    device_id     String          COMMENT 'device fingerprint',
    outcome       String          COMMENT 'success or fail',
    error_code    String          COMMENT 'SDK or carrier code on failure',
    token_digest  String          COMMENT 'SHA-256 of the loginToken, hex',
    ex_id         String          COMMENT 'the caller id for the request',
    country       String          COMMENT 'geo of ip: ISO country code',
    province      String          COMMENT 'geo of ip: province or other subdivision',
    city          String          COMMENT 'geo of ip: city',
    asn           UInt32          COMMENT 'geo of ip: autonomous system number, 0 if unknown',
    ip_type       String          COMMENT 'geo of ip: mobile, broadband, idc or unknown',
    inserted_at   DateTime('UTC') DEFAULT now() COMMENT 'when ClickHouse received the row; the newest copy is kept'
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMMDD(ts)
ORDER BY (app_id, event_id)
SETTINGS index_granularity = 8192;
