-- network_relationships: master -> sub-affiliate edges (a tree: each sub has one master).
CREATE TABLE IF NOT EXISTS network_relationships (
    relationship_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    master_affiliate_id VARCHAR(50),
    sub_affiliate_id VARCHAR(50),
    recruited_at TIMESTAMP,
    is_active BOOLEAN DEFAULT TRUE,

    CONSTRAINT fk_master FOREIGN KEY (master_affiliate_id)
        REFERENCES partners(partner_id),
    CONSTRAINT fk_sub FOREIGN KEY (sub_affiliate_id)
        REFERENCES partners(partner_id)
);

CREATE INDEX IF NOT EXISTS idx_network_master ON network_relationships(master_affiliate_id);
CREATE INDEX IF NOT EXISTS idx_network_sub ON network_relationships(sub_affiliate_id);
