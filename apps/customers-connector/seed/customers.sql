-- The demo customers of the order platform (ids 1-9): 1-3 platinum, 4 and 9 bronze,
-- 5 and 7 gold, 6 and 8 silver. The customers connector creates its demo database from
-- this file when the database is missing; `sqlite3 customers.db < customers.sql` does
-- the same by hand.

CREATE TABLE IF NOT EXISTS customers (
    id INTEGER PRIMARY KEY,
    firstName TEXT NOT NULL,
    lastName TEXT NOT NULL,
    email TEXT NOT NULL,
    address TEXT NOT NULL,
    level TEXT NOT NULL DEFAULT 'bronze'
);

INSERT INTO customers (id, firstName, lastName, email, address, level) VALUES
    (1, 'Jana', 'Nováková', 'jana.novakova@example.com', 'Vinohradská 12, 120 00 Praha 2', 'platinum'),
    (2, 'Tomáš', 'Dvořák', 'tomas.dvorak@example.com', 'Masarykova 45, 602 00 Brno', 'platinum'),
    (3, 'Amelia', 'Clarke', 'amelia.clarke@example.com', '14 Harbour Street, Whitstable CT5 1AG', 'platinum'),
    (4, 'Lukas', 'Becker', 'lukas.becker@example.com', 'Bergmannstraße 7, 10961 Berlin', 'bronze'),
    (5, 'Sofia', 'Romano', 'sofia.romano@example.com', 'Via dei Mille 23, 80121 Napoli', 'gold'),
    (6, 'Mateo', 'García', 'mateo.garcia@example.com', 'Calle de Alcalá 88, 28009 Madrid', 'silver'),
    (7, 'Emma', 'Lindqvist', 'emma.lindqvist@example.com', 'Götgatan 31, 116 21 Stockholm', 'gold'),
    (8, 'Noah', 'Jansen', 'noah.jansen@example.com', 'Prinsengracht 263, 1016 GV Amsterdam', 'silver'),
    (9, 'Zuzana', 'Horváthová', 'zuzana.horvathova@example.com', 'Obchodná 5, 811 06 Bratislava', 'bronze');
