-- Reference data of the "East-Data-West-Compute" plan: 8 hubs, 10 clusters, the hub-to-hub
-- latency matrix, the SKUs, and the ledger accounts of the exchange and of every hub.
-- The NAMES are those of the national plan. Every FIGURE (renewable share, carbon intensity, PUE,
-- latency, TFLOPS) is ILLUSTRATIVE: plausible and rounded, not official. See shared REFERENCE-DATA.md.
-- Regions group hubs for data residency: north (bth, nmg), east (yrd), south (gba, gz), west (cy, gs, nx).

INSERT INTO hubs (code, name, tier, region, renewable_share, carbon_g_per_kwh, pue) VALUES
    ('bth', 'Beijing–Tianjin–Hebei', 'east', 'north', 30, 650, 1.25),
    ('yrd', 'Yangtze River Delta', 'east', 'east', 25, 560, 1.25),
    ('gba', 'Guangdong–Hong Kong–Macao Greater Bay Area', 'east', 'south', 35, 450, 1.25),
    ('cy', 'Chengdu–Chongqing', 'east', 'west', 60, 250, 1.25),
    ('nmg', 'Inner Mongolia', 'west', 'north', 45, 520, 1.20),
    ('gz', 'Guizhou', 'west', 'south', 55, 380, 1.20),
    ('gs', 'Gansu', 'west', 'west', 55, 420, 1.20),
    ('nx', 'Ningxia', 'west', 'west', 50, 480, 1.20);

INSERT INTO clusters (code, name, hub) VALUES
    ('zhangjiakou', 'Zhangjiakou', 'bth'),
    ('yrd-eco-green', 'Yangtze Delta Eco-Green Integration Demonstration Zone', 'yrd'),
    ('wuhu', 'Wuhu', 'yrd'),
    ('shaoguan', 'Shaoguan', 'gba'),
    ('tianfu', 'Tianfu', 'cy'),
    ('chongqing', 'Chongqing', 'cy'),
    ('helinger', 'Horinger (Helinger)', 'nmg'),
    ('guian', 'Gui''an', 'gz'),
    ('qingyang', 'Qingyang', 'gs'),
    ('zhongwei', 'Zhongwei', 'nx');

INSERT INTO hub_latency (from_hub, to_hub, ms) VALUES
    ('bth', 'bth', 1),
    ('bth', 'yrd', 12),
    ('bth', 'gba', 20),
    ('bth', 'cy', 18),
    ('bth', 'nmg', 8),
    ('bth', 'gz', 22),
    ('bth', 'gs', 18),
    ('bth', 'nx', 15),
    ('yrd', 'bth', 12),
    ('yrd', 'yrd', 1),
    ('yrd', 'gba', 12),
    ('yrd', 'cy', 16),
    ('yrd', 'nmg', 18),
    ('yrd', 'gz', 16),
    ('yrd', 'gs', 22),
    ('yrd', 'nx', 20),
    ('gba', 'bth', 20),
    ('gba', 'yrd', 12),
    ('gba', 'gba', 1),
    ('gba', 'cy', 15),
    ('gba', 'nmg', 25),
    ('gba', 'gz', 10),
    ('gba', 'gs', 25),
    ('gba', 'nx', 25),
    ('cy', 'bth', 18),
    ('cy', 'yrd', 16),
    ('cy', 'gba', 15),
    ('cy', 'cy', 1),
    ('cy', 'nmg', 20),
    ('cy', 'gz', 8),
    ('cy', 'gs', 12),
    ('cy', 'nx', 14),
    ('nmg', 'bth', 8),
    ('nmg', 'yrd', 18),
    ('nmg', 'gba', 25),
    ('nmg', 'cy', 20),
    ('nmg', 'nmg', 1),
    ('nmg', 'gz', 25),
    ('nmg', 'gs', 12),
    ('nmg', 'nx', 8),
    ('gz', 'bth', 22),
    ('gz', 'yrd', 16),
    ('gz', 'gba', 10),
    ('gz', 'cy', 8),
    ('gz', 'nmg', 25),
    ('gz', 'gz', 1),
    ('gz', 'gs', 16),
    ('gz', 'nx', 18),
    ('gs', 'bth', 18),
    ('gs', 'yrd', 22),
    ('gs', 'gba', 25),
    ('gs', 'cy', 12),
    ('gs', 'nmg', 12),
    ('gs', 'gz', 16),
    ('gs', 'gs', 1),
    ('gs', 'nx', 6),
    ('nx', 'bth', 15),
    ('nx', 'yrd', 20),
    ('nx', 'gba', 25),
    ('nx', 'cy', 14),
    ('nx', 'nmg', 8),
    ('nx', 'gz', 18),
    ('nx', 'gs', 6),
    ('nx', 'nx', 1);

INSERT INTO skus (code, name, class, unit, perf_fp16_tflops) VALUES
    ('cpu.general.vcpu', 'General-purpose vCPU', 'general', 'vCPU-hour', NULL),
    ('ai.ascend-910b', 'Huawei Ascend 910B', 'intelligent', 'card-hour', 320),
    ('ai.metax-c500', 'MetaX (MuXi) C500', 'intelligent', 'card-hour', 280),
    ('ai.mthreads-s4000', 'Moore Threads MTT S4000', 'intelligent', 'card-hour', 100),
    ('ai.nvidia-h20', 'NVIDIA H20', 'intelligent', 'card-hour', 148),
    ('hpc.node', 'HPC node (CPU, InfiniBand)', 'supercomputing', 'node-hour', NULL);

-- Accounts of the exchange itself (fixed ids so that code and tests can name them) and of each hub.
INSERT INTO accounts (id, kind) VALUES
    ('00000000-0000-0000-0000-000000000001', 'external'),
    ('00000000-0000-0000-0000-000000000002', 'exchange_fees');
INSERT INTO accounts (id, kind, hub) SELECT gen_random_uuid(), 'hub_levy', code FROM hubs;
