package org.sensormetrics.consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.sql.ResultSet;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

/**
 * Every query of the data dashboard (deploy/grafana/sensor-metrics-data-dashboard.json) run on a real PostgreSQL
 * with rollups, with Grafana's macros filled in as its PostgreSQL data source fills them ($__timeFilter(c) is
 * {@code c BETWEEN from AND to}), and the variable's value: each answers, and the fleet panels agree with the
 * readings.
 */
class DataDashboardTest {

    private static final Path DASHBOARD = Path.of("deploy/grafana/sensor-metrics-data-dashboard.json");

    @Test
    void everyQueryOfTheDataDashboardRunsOnTheRollups() throws Exception {
        try (Pipeline p = Pipeline.scenario("data_dashboard", 2)) {
            p.startService();
            Instant start = Instant.parse("2024-05-01T00:00:00Z");
            p.storeAndRollUp(p.load(20, 3_000).withClock(n -> start.plusSeconds(20 * n)));

            JsonNode dashboard = new ObjectMapper().readTree(DASHBOARD.toFile());
            List<String> queries = new ArrayList<>();
            dashboard.at("/templating/list").forEach(v -> {
                if (v.path("type").asText().equals("query")) {
                    queries.add(v.path("query").asText());
                }
            });
            dashboard.path("panels").forEach(panel -> panel.path("targets").forEach(t -> queries.add(t.path("rawSql").asText())));
            assertEquals(6, queries.size(), "the sensor variable and five panels");
            String from = "'2024-05-01T00:00:00Z'";
            String to = "'2024-05-02T00:00:00Z'";
            for (String query : queries) {
                String sql = fill(query, from, to, "sensor_3");
                assertFalse(sql.contains("$"), "a macro left: " + sql);
                try (var c = p.db(); var st = c.createStatement(); ResultSet rs = st.executeQuery(sql)) {
                    assertTrue(rs.next(), "rows from: " + sql);
                }
            }
            String readingsPerHour = fill(queries.get(3), from, to, "sensor_3");
            assertEquals(p.count("SELECT count(*) FROM metrics"), p.count("SELECT sum(readings) FROM (" + readingsPerHour + ") q"));
            String sensorsPerHour = fill(queries.get(4), from, to, "sensor_3");
            assertEquals(p.count("SELECT count(*) FROM (SELECT DISTINCT sensor_id, date_trunc('hour', timestamp, 'UTC') FROM metrics) q"),
                    p.count("SELECT sum(sensors) FROM (" + sensorsPerHour + ") q"));
        }
    }

    /** Grafana's $__timeFilter, $__timeFrom() and $__timeTo() for the range, and the sensor variable. */
    private static String fill(String query, String from, String to, String sensor) {
        Matcher m = Pattern.compile("\\$__timeFilter\\((\\w+)\\)").matcher(query);
        String sql = m.replaceAll(r -> r.group(1) + " BETWEEN " + from + " AND " + to);
        return sql.replace("$__timeFrom()", from).replace("$__timeTo()", to).replace("$sensor", sensor);
    }
}
