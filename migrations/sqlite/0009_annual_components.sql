-- Points of the annual score's components that come from outside the service (履职绩效,
-- 12345热线, 主管单位评价, 监督检查), entered by organizers per unit and year. The latest
-- entry counts; every entry is also in the campaign's chain.
CREATE TABLE annual_components (
    campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
    target_id BIGINT NOT NULL REFERENCES targets (id),
    year TEXT NOT NULL,
    component TEXT NOT NULL CHECK (component IN ('duties', 'hotline', 'supervising_unit', 'inspection')),
    -- A decimal, as text: exact.
    points TEXT NOT NULL,
    entered_by BIGINT REFERENCES staff_users (id),
    entered_at TEXT NOT NULL,
    PRIMARY KEY (campaign_id, target_id, year, component)
);
