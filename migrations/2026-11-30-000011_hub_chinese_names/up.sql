-- Hubs' names in Chinese, as the national "East-Data-West-Compute" plan gives them (the web
-- console labels hubs in both languages). Nullable: a hub added later may not have one yet.
ALTER TABLE hubs ADD COLUMN name_zh TEXT CHECK (name_zh IS NULL OR length(name_zh) BETWEEN 1 AND 64);

UPDATE hubs SET name_zh = v.name_zh
FROM (VALUES
    ('bth', '京津冀'),
    ('yrd', '长三角'),
    ('gba', '粤港澳大湾区'),
    ('cy', '成渝'),
    ('nmg', '内蒙古'),
    ('gz', '贵州'),
    ('gs', '甘肃'),
    ('nx', '宁夏')
) AS v(code, name_zh)
WHERE hubs.code = v.code;
