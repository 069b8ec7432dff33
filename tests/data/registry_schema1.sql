-- A results registry written by heatmaploss before schema migrations (schema version 1,
-- commit 11c71bf), dumped with sqlite3's iterdump: tests/test_migrations.py upgrades it.
BEGIN TRANSACTION;
CREATE TABLE metrics (
	id INTEGER NOT NULL, 
	model_id INTEGER NOT NULL, 
	dataset VARCHAR(200) NOT NULL, 
	metric VARCHAR(200) NOT NULL, 
	explainer VARCHAR(200) NOT NULL, 
	region VARCHAR(200) NOT NULL, 
	class_name VARCHAR(200) NOT NULL, 
	value FLOAT, 
	n INTEGER, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_metrics_key UNIQUE (model_id, dataset, metric, explainer, region, class_name), 
	FOREIGN KEY(model_id) REFERENCES models (id)
);
INSERT INTO "metrics" VALUES(1,1,'test','accuracy','','','all',0.75,100,'2026-12-01 03:44:55.134804');
INSERT INTO "metrics" VALUES(2,1,'test','overlap','gradcam','heart','NOR',NULL,NULL,'2026-12-01 03:44:55.134804');
INSERT INTO "metrics" VALUES(3,1,'test','overlap','hirescam','heart','all',0.5,64,'2026-12-01 03:44:55.134804');
INSERT INTO "metrics" VALUES(4,2,'test','accuracy','','','all',0.75,100,'2026-12-01 03:44:55.135469');
INSERT INTO "metrics" VALUES(5,2,'test','overlap','gradcam','heart','NOR',NULL,NULL,'2026-12-01 03:44:55.135469');
INSERT INTO "metrics" VALUES(6,2,'test','overlap','hirescam','heart','all',0.6,64,'2026-12-01 03:44:55.135469');
INSERT INTO "metrics" VALUES(7,4,'test','accuracy','','','all',0.75,100,'2026-12-01 03:44:55.141962');
INSERT INTO "metrics" VALUES(8,4,'test','overlap','gradcam','heart','NOR',NULL,NULL,'2026-12-01 03:44:55.141962');
INSERT INTO "metrics" VALUES(9,4,'test','overlap','hirescam','heart','all',0.5,64,'2026-12-01 03:44:55.141962');
INSERT INTO "metrics" VALUES(10,5,'test','accuracy','','','all',0.75,100,'2026-12-01 03:44:55.142222');
INSERT INTO "metrics" VALUES(11,5,'test','overlap','gradcam','heart','NOR',NULL,NULL,'2026-12-01 03:44:55.142222');
INSERT INTO "metrics" VALUES(12,5,'test','overlap','hirescam','heart','all',0.6,64,'2026-12-01 03:44:55.142222');
CREATE TABLE models (
	id INTEGER NOT NULL, 
	search_id INTEGER NOT NULL, 
	trial VARCHAR(200) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	seed INTEGER, 
	hyperparameters JSON, 
	epochs INTEGER, 
	best_epoch INTEGER, 
	wall_time_s FLOAT, 
	val_accuracy FLOAT, 
	val_loss FLOAT, 
	test_accuracy FLOAT, 
	scores JSON, 
	model_path TEXT, 
	git_commit VARCHAR(64), 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_models_key UNIQUE (search_id, trial), 
	FOREIGN KEY(search_id) REFERENCES searches (id)
);
INSERT INTO "models" VALUES(1,1,'0','completed',100,'{"learning_rate": 0.001}',3,2,10.5,0.9,0.0,0.95,'{"val_accuracy": 0.9, "val_loss": 0.0}','models/exp1-cce/trial_0.keras','11c71bf02fa8b06b17a1a8f1f9303ba1fc00608c-dirty','2026-12-01 03:44:55.133230','2026-12-01 03:44:55.133230');
INSERT INTO "models" VALUES(2,1,'1','completed',101,'{"learning_rate": 0.002}',3,2,11.5,0.9,0.1,0.95,'{"val_accuracy": 0.9, "val_loss": 0.1}','models/exp1-cce/trial_1.keras','11c71bf02fa8b06b17a1a8f1f9303ba1fc00608c-dirty','2026-12-01 03:44:55.135376','2026-12-01 03:44:55.135376');
INSERT INTO "models" VALUES(3,1,'2','completed',102,'{"learning_rate": 0.003}',3,2,12.5,0.9,0.2,NULL,'{"val_accuracy": 0.9, "val_loss": 0.2}','models/exp1-cce/trial_2.keras','11c71bf02fa8b06b17a1a8f1f9303ba1fc00608c-dirty','2026-12-01 03:44:55.135618','2026-12-01 03:44:55.135618');
INSERT INTO "models" VALUES(4,2,'0','completed',100,'{"learning_rate": 0.001}',3,2,10.5,0.9,0.0,0.95,'{"val_accuracy": 0.9, "val_loss": 0.0}','models/exp1-heatmap/trial_0.keras','11c71bf02fa8b06b17a1a8f1f9303ba1fc00608c-dirty','2026-12-01 03:44:55.141845','2026-12-01 03:44:55.141845');
INSERT INTO "models" VALUES(5,2,'1','completed',101,'{"learning_rate": 0.002}',3,2,11.5,0.9,0.1,0.95,'{"val_accuracy": 0.9, "val_loss": 0.1}','models/exp1-heatmap/trial_1.keras','11c71bf02fa8b06b17a1a8f1f9303ba1fc00608c-dirty','2026-12-01 03:44:55.142160','2026-12-01 03:44:55.142160');
INSERT INTO "models" VALUES(6,2,'2','completed',102,'{"learning_rate": 0.003}',3,2,12.5,0.9,0.2,NULL,'{"val_accuracy": 0.9, "val_loss": 0.2}','models/exp1-heatmap/trial_2.keras','11c71bf02fa8b06b17a1a8f1f9303ba1fc00608c-dirty','2026-12-01 03:44:55.142354','2026-12-01 03:44:55.142354');
INSERT INTO "models" VALUES(7,3,'0','running',7,'{"replicate": 0, "learning_rate": 0.001}',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,'11c71bf02fa8b06b17a1a8f1f9303ba1fc00608c-dirty','2026-12-01 03:44:55.143052','2026-12-01 03:44:55.143052');
CREATE TABLE schema_version (
	version INTEGER NOT NULL, 
	applied_at DATETIME NOT NULL, 
	PRIMARY KEY (version)
);
INSERT INTO "schema_version" VALUES(1,'2026-12-01 03:44:55.108348');
CREATE TABLE searches (
	id INTEGER NOT NULL, 
	profile VARCHAR(64) NOT NULL, 
	experiment VARCHAR(200) NOT NULL, 
	protocol VARCHAR(200) NOT NULL, 
	group_name VARCHAR(200) NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	seed INTEGER, 
	loss_config JSON NOT NULL, 
	hyperparameter_space JSON NOT NULL, 
	config_hash VARCHAR(64) NOT NULL, 
	git_commit VARCHAR(64), 
	versions JSON, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_searches_key UNIQUE (profile, experiment, protocol, group_name, name)
);
INSERT INTO "searches" VALUES(1,'smoke','exp1','controlled','cce','exp1-controlled-cce-smoke-seed0',0,'{"penalty": "outside_fraction", "weight": 1.0, "fingerprint": "abc"}','{"learning_rate": [0.0003, 0.003, "log"]}','9917ea5390262fa9ec1872da315bd316784ab586e8faab042b7eed8e680c26c7','11c71bf02fa8b06b17a1a8f1f9303ba1fc00608c-dirty','{"heatmaploss": "0.1.0", "tensorflow": "2.21.0", "keras": "3.15.1", "keras-tuner": "1.4.8", "numpy": "2.4.6", "scipy": "1.17.1", "pandas": "3.1.1", "sqlalchemy": "2.1.9", "python": "3.11.7"}','2026-12-01 03:44:55.130789');
INSERT INTO "searches" VALUES(2,'smoke','exp1','controlled','heatmap','exp1-controlled-heatmap-smoke-seed0',0,'{"penalty": "outside_fraction", "weight": 1.0, "fingerprint": "abc"}','{"learning_rate": [0.0003, 0.003, "log"]}','9917ea5390262fa9ec1872da315bd316784ab586e8faab042b7eed8e680c26c7','11c71bf02fa8b06b17a1a8f1f9303ba1fc00608c-dirty','{"heatmaploss": "0.1.0", "tensorflow": "2.21.0", "keras": "3.15.1", "keras-tuner": "1.4.8", "numpy": "2.4.6", "scipy": "1.17.1", "pandas": "3.1.1", "sqlalchemy": "2.1.9", "python": "3.11.7"}','2026-12-01 03:44:55.136530');
INSERT INTO "searches" VALUES(3,'smoke','decoy','thesis','main-hirescam','decoy-main-hirescam-smoke-seed0',0,'{"method": "hirescam"}','{"replicate": [0, 1, "grid"], "learning_rate": 0.001}','137d861aa36d9f30e4c6d1cea6754b00d8fd62d9af1d6bbd89dd6cbe385423f0','11c71bf02fa8b06b17a1a8f1f9303ba1fc00608c-dirty','{"heatmaploss": "0.1.0", "tensorflow": "2.21.0", "keras": "3.15.1", "keras-tuner": "1.4.8", "numpy": "2.4.6", "scipy": "1.17.1", "pandas": "3.1.1", "sqlalchemy": "2.1.9", "python": "3.11.7"}','2026-12-01 03:44:55.142540');
COMMIT;
